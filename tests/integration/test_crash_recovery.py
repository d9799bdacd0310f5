"""SIGKILL `remediator serve` at the worst moments; after a restart nothing is lost or doubled."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.harness.docker_engine import Resources
from tests.harness.processes import Proc, free_port, spawn, stop, wait_ready
from tests.harness.stack import wait
from tests.support.fixtures import ALERTMANAGER
from tests.support.playbooks import SLEEPER, TWO_FIXES

pytestmark = pytest.mark.docker

TOKEN = "crash-token"
FIXTURE = ALERTMANAGER / "firing-model-load-failure.json"

PLAYBOOK = TWO_FIXES


def serve(tmp: Path, port: int, config: Path, playbooks: Path) -> Proc:
    argv = [str(Path(sys.executable).parent / "remediator"), "serve", "--host", "127.0.0.1",
            "--port", str(port), "--db", str(tmp / "r.db"), "--config", str(config),
            "--playbooks", str(playbooks)]
    os.environ["REMEDIATOR_WEBHOOK_TOKEN"] = TOKEN
    proc = spawn(f"remediator-{time.monotonic_ns()}", argv, port, tmp)
    wait_ready(proc, "/readyz", timeout=60)
    return proc


def kill(proc: Proc) -> None:
    """SIGKILL the server's whole process group (gunicorn master and worker), as a crash."""
    os.killpg(proc.process.pid, signal.SIGKILL)
    proc.process.wait(10)


def api(proc: Proc, path: str) -> Any:
    return requests.get(f"{proc.url}{path}", timeout=5,
                        headers={"Authorization": f"Bearer {TOKEN}"}).json()


def alert_body(n: int) -> bytes:
    body = json.loads(FIXTURE.read_text())
    body["alerts"][0]["fingerprint"] = f"{n:016x}"
    body["alerts"][0]["labels"]["seq"] = str(n)
    return json.dumps(body).encode()


def setup(tmp: Path, container: str = "none") -> tuple[Path, Path]:
    config = tmp / "remediator.yml"
    config.write_text(f"targets:\n  - name: app-prod\n    selector: {{service: app-prod}}\n"
                      f"    container: {container}\n    base_url: http://127.0.0.1:1\n"
                      f"    bounds: {{max_memory: 1g}}\n")
    playbooks = tmp / "playbooks"
    playbooks.mkdir()
    (playbooks / "two_fixes.yml").write_text(PLAYBOOK)
    return config, playbooks


@pytest.mark.usefixtures("engine")  # a declared target makes /readyz want the engine
def test_sigkill_right_after_the_nth_202_loses_and_doubles_nothing(tmp_path: Path) -> None:
    config, playbooks = setup(tmp_path)
    (playbooks / "two_fixes.yml").unlink()  # intake only: no execution against "none"
    port = free_port()
    proc = serve(tmp_path, port, config, playbooks)
    acked = []
    for n in range(1, 41):
        resp = requests.post(f"{proc.url}/api/v1/alerts", data=alert_body(n), timeout=5,
                             headers={"Authorization": f"Bearer {TOKEN}",
                                      "Content-Type": "application/json"})
        assert resp.status_code == 202
        acked.append(n)
    kill(proc)  # straight after the 40th 202
    proc = serve(tmp_path, port, config, playbooks)
    try:
        incidents = wait(lambda: (i := api(proc, "/api/v1/incidents?limit=100")["items"])
                         and len(i) >= len(acked) and i, 30, "every acked alert as an incident")
        assert sorted(int(i["labels"]["seq"]) for i in incidents) == acked
        db = sqlite3.connect(tmp_path / "r.db")
        assert db.execute("SELECT COUNT(*) FROM inbox WHERE processed_at IS NULL").fetchone() \
            == (0,)
        assert db.execute("SELECT SUM(notices) FROM incidents").fetchone() == (len(acked),)
    finally:
        stop(proc)


def test_sigkill_between_two_mutating_steps_fixes_once(
        tmp_path: Path, images: dict[str, str], docker_resources: Resources) -> None:
    box = docker_resources.run(images["modelserver"], SLEEPER, mem_limit="256m",
                               memswap_limit="256m")
    config, playbooks = setup(tmp_path, box.name)
    port = free_port()
    since = int(time.time()) - 1
    proc = serve(tmp_path, port, config, playbooks)
    requests.post(f"{proc.url}/api/v1/alerts", data=FIXTURE.read_bytes(), timeout=5,
                  headers={"Authorization": f"Bearer {TOKEN}",
                           "Content-Type": "application/json"})

    def between() -> bool:
        items = api(proc, "/api/v1/executions")["items"]
        steps = {s["id"]: s["status"] for s in items[0]["steps"]} if items else {}
        return steps.get("restart") == "ok" and steps.get("settle") == "running"

    wait(between, 60, "the restart to finish and the pause to start", interval=0.1)
    kill(proc)
    proc = serve(tmp_path, port, config, playbooks)
    try:
        done = wait(lambda: [e for e in api(proc, "/api/v1/executions")["items"]
                             if e["state"] == "finished"], 60, "the resumed execution")
        assert done[0]["outcome"] == "success", done[0]
        box.reload()
        assert box.attrs["HostConfig"]["Memory"] == 384 * 2**20  # the second fix happened
        events = docker_resources.client.events(
            since=since, until=int(time.time()) + 1, decode=True,
            filters={"container": box.id, "event": "restart"})
        assert len(list(events)) == 1  # and the first happened once, counted by the engine
    finally:
        stop(proc)
