"""Two `remediator serve` on one store: the second refuses to start and names the pid of
the first; the CLI's other commands still work on the store while the first runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.harness.processes import free_port, spawn, stop, wait_ready

REMEDIATOR = str(Path(sys.executable).parent / "remediator")


def test_a_second_serve_on_the_same_store_refuses_naming_the_first_pid(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REMEDIATOR_WEBHOOK_TOKEN", "one-serve-token")
    config = tmp_path / "remediator.yml"
    config.write_text(f"targets: []\nalertmanager_url: http://127.0.0.1:{free_port()}\n")
    db = tmp_path / "r.db"
    playbooks = tmp_path / "playbooks"
    playbooks.mkdir()

    def argv(port: int) -> list[str]:
        return [REMEDIATOR, "serve", "--host", "127.0.0.1", "--port", str(port), "--db",
                str(db), "--config", str(config), "--playbooks", str(playbooks)]

    port = free_port()
    first = spawn("first", argv(port), port, tmp_path)
    try:
        wait_ready(first, "/healthz", timeout=60)
        second = subprocess.Popen(argv(free_port()), stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                                  start_new_session=True)
        try:
            _, stderr = second.communicate(timeout=30)
        except subprocess.TimeoutExpired:  # it started: stop it whole, master and worker
            os.killpg(second.pid, signal.SIGKILL)
            second.communicate()
            pytest.fail("a second serve started on a store another serve holds")
        assert second.returncode == 2, stderr
        assert f"pid {first.process.pid}" in stderr
        assert f"{db}.lock" in stderr
        assert requests.get(first.url + "/healthz", timeout=5).status_code == 200
        # only serve takes the lock: the operator's commands work beside it
        for command in (["pause"], ["executions", "list"], ["resume"]):
            done = subprocess.run([REMEDIATOR, *command, "--db", str(db)], capture_output=True,
                                  text=True, timeout=60)
            assert done.returncode == 0, (command, done.stderr)
    finally:
        stop(first)
    # the lock goes with its process: the store serves again
    port = free_port()
    again = spawn("again", argv(port), port, tmp_path)
    try:
        wait_ready(again, "/healthz", timeout=60)
    finally:
        stop(again)
