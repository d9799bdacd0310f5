"""A crash between an execution's end and its escalation loses no page.

A real `remediator serve` runs a playbook whose `notify` step asks for a page. The process
(gunicorn master and worker) is SIGKILLed right after the execution's end is committed,
before anything else can run: an injected wrapper around Store.finish_execution, loaded by
a `python -c` launcher so the product carries no test hook. After a restart on the same
store, the page reaches a PagerDuty stand-in.
"""

from __future__ import annotations

import contextlib
import sqlite3
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests

from tests.harness.processes import Proc, free_port, spawn, stop, wait_ready
from tests.support import PagerDutySink
from tests.support.escalation_kit import ROUTING_KEY, firing

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "escalation-crash-token"
CHANNEL_ENV = ("SLACK_WEBHOOK_URL", "TEAMS_WEBHOOK_URL", "ESCALATION_WEBHOOK_URL", "SMTP_HOST",
               "SMTP_FROM", "SMTP_TO")

PLAYBOOK = """
name: page-on-call
match: {alertname: ModelLoadFailure}
steps:
  - id: ask
    phase: diagnose
    action: notify
    with: {team: emergency, level: page, reason: "crash-test: wake the on-call"}
"""

# Runs `remediator` with Store.finish_execution wrapped: the whole process group dies by
# SIGKILL the moment an execution's end is committed (fork keeps the patch in the worker).
DIE_AFTER_END = """
import os, signal, sys
from remediator.store.sqlite import SqliteStore as Store
_finish = Store.finish_execution
def _finish_then_die(self, *args, **kwargs):
    _finish(self, *args, **kwargs)
    os.killpg(0, signal.SIGKILL)
Store.finish_execution = _finish_then_die
from remediator.service.cli import main
sys.argv = ["remediator", *sys.argv[1:]]
main()
"""


def setup(tmp: Path) -> tuple[Path, Path]:
    config = tmp / "remediator.yml"
    config.write_text(f"""
mode: act
alertmanager_url: http://127.0.0.1:{free_port()}
escalation_path: {ROOT / "config" / "escalation.yml"}
targets:
  - name: app-prod
    selector: {{service: app-prod}}
    container: escalation-crash-no-container
    base_url: http://127.0.0.1:{free_port()}
""")
    playbooks = tmp / "playbooks"
    playbooks.mkdir()
    (playbooks / "page.yml").write_text(PLAYBOOK)
    return config, playbooks


@contextlib.contextmanager
def serve(tmp: Path, port: int, config: Path, playbooks: Path,
          launcher: list[str]) -> Iterator[Proc]:
    argv = [*launcher, "serve", "--host", "127.0.0.1", "--port", str(port),
            "--db", str(tmp / "r.db"), "--config", str(config), "--playbooks", str(playbooks)]
    proc = spawn(f"remediator-{time.monotonic_ns()}", argv, port, tmp)
    try:
        wait_ready(proc, "/healthz", timeout=60)  # /readyz would also want Docker
        yield proc
    finally:
        stop(proc)


def test_sigkill_right_after_an_execution_ends_still_delivers_its_page(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in CHANNEL_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("REMEDIATOR_WEBHOOK_TOKEN", TOKEN)
    monkeypatch.setenv("PAGERDUTY_ROUTING_KEY", ROUTING_KEY)
    config, playbooks = setup(tmp_path)
    port = free_port()
    with PagerDutySink() as pagerduty:
        monkeypatch.setenv("PAGERDUTY_EVENTS_URL", pagerduty.url)
        with serve(tmp_path, port, config, playbooks,
                   [sys.executable, "-c", DIE_AFTER_END]) as doomed:
            resp = requests.post(f"{doomed.url}/api/v1/alerts", data=firing(datetime.now(UTC)),
                                 timeout=5,
                                 headers={"Authorization": f"Bearer {TOKEN}",
                                          "Content-Type": "application/json"})
            assert resp.status_code == 202
            doomed.process.wait(30)  # the execution ran to its end, and the process died
        assert doomed.process.returncode == -9, doomed.log_tail()
        db = sqlite3.connect(tmp_path / "r.db")
        assert db.execute("SELECT state, outcome FROM executions").fetchall() == \
            [("finished", "escalated")]
        assert db.execute("SELECT COUNT(*) FROM notifications").fetchone() == (0,)
        assert pagerduty.requests == []  # died between the end and the escalation
        db.close()

        remediator = str(Path(sys.executable).parent / "remediator")
        with serve(tmp_path, port, config, playbooks, [remediator]) as proc:
            deadline = time.monotonic() + 20
            while not pagerduty.verdicts and time.monotonic() < deadline:
                time.sleep(0.1)
            assert pagerduty.verdicts == [202], (pagerduty.rejections, proc.log_tail(40))
            (page,) = pagerduty.events
            assert page["event_action"] == "trigger"
            assert "crash-test: wake the on-call" in page["payload"]["custom_details"]["text"]
