"""Pause means pause: `remediator pause` pressed while a run is between two mutating steps
on a real container stops the next one, and the skipped step says why."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.harness.docker_engine import Resources
from tests.harness.processes import Proc, free_port, spawn, stop, wait_ready
from tests.harness.stack import wait
from tests.support.escalation_kit import firing
from tests.support.playbooks import SLEEPER, TWO_FIXES

pytestmark = pytest.mark.docker

TOKEN = "pause-token"
REMEDIATOR = str(Path(sys.executable).parent / "remediator")

PLAYBOOK = TWO_FIXES + """  - id: still_there
    phase: validate
    action: docker.inspect
"""


def serve(tmp: Path, port: int, config: Path, playbooks: Path) -> Proc:
    argv = [REMEDIATOR, "serve", "--host", "127.0.0.1", "--port", str(port),
            "--db", str(tmp / "r.db"), "--config", str(config), "--playbooks", str(playbooks)]
    os.environ["REMEDIATOR_WEBHOOK_TOKEN"] = TOKEN
    proc = spawn(f"remediator-{time.monotonic_ns()}", argv, port, tmp)
    wait_ready(proc, "/readyz", timeout=60)
    return proc


def executions(proc: Proc) -> list[dict[str, Any]]:
    resp = requests.get(f"{proc.url}/api/v1/executions", timeout=5,
                        headers={"Authorization": f"Bearer {TOKEN}"})
    items: list[dict[str, Any]] = resp.json()["items"]
    return items


def test_pause_pressed_mid_run_stops_the_next_mutating_step(
        tmp_path: Path, images: dict[str, str], docker_resources: Resources) -> None:
    box = docker_resources.run(images["modelserver"], SLEEPER, mem_limit="256m",
                               memswap_limit="256m")
    config = tmp_path / "remediator.yml"
    config.write_text(f"mode: act\ntargets:\n  - name: app-prod\n"
                      f"    selector: {{service: app-prod}}\n    container: {box.name}\n"
                      f"    base_url: http://127.0.0.1:1\n    bounds: {{max_memory: 1g}}\n")
    playbooks = tmp_path / "playbooks"
    playbooks.mkdir()
    (playbooks / "two_fixes.yml").write_text(PLAYBOOK)
    proc = serve(tmp_path, free_port(), config, playbooks)
    try:
        resp = requests.post(f"{proc.url}/api/v1/alerts", data=firing(datetime.now(UTC)),
                             timeout=5, headers={"Authorization": f"Bearer {TOKEN}",
                                                 "Content-Type": "application/json"})
        assert resp.status_code == 202

        def between() -> bool:
            items = executions(proc)
            steps = {s["id"]: s["status"] for s in items[0]["steps"]} if items else {}
            return steps.get("restart") == "ok" and steps.get("settle") == "running"

        wait(between, 60, "the restart to finish and the pause to start", interval=0.1)
        pressed = subprocess.run([REMEDIATOR, "pause", "--db", str(tmp_path / "r.db")],
                                 capture_output=True, text=True, timeout=30)
        assert pressed.returncode == 0 and "paused" in pressed.stdout, pressed.stderr

        done = wait(lambda: [e for e in executions(proc) if e["state"] == "finished"], 60,
                    "the execution to end")
        steps = {s["id"]: s for s in done[0]["steps"]}
        assert steps["settle"]["status"] == "ok"  # the step running when pause was pressed
        assert steps["raise_memory"]["status"] == "skipped"
        assert steps["raise_memory"]["note"].startswith("Remediator was paused"), steps
        assert steps["still_there"]["status"] == "ok"  # read-only checks still run
        # The fix was cut short: not a success, and the incident is not marked fixed.
        assert done[0]["outcome"] == "aborted", done[0]
        incidents = requests.get(f"{proc.url}/api/v1/incidents", timeout=5,
                                 headers={"Authorization": f"Bearer {TOKEN}"}).json()["items"]
        assert incidents[0]["fixed_at"] is None, incidents
        box.reload()
        assert box.attrs["HostConfig"]["Memory"] == 256 * 2**20  # the update never happened
    finally:
        stop(proc)
