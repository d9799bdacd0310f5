"""Fault: the Docker engine goes away in the middle of a playbook.

`remediator serve` reaches the engine through a unix-socket forwarder the test controls
(DOCKER_HOST=unix://...); cutting it is what a stopped or crashed dockerd looks like to a
client: the socket is gone and open connections drop. A short outage is absorbed by the
step's `retries`; a long one fails the step with a clear error and escalates. Throughout,
Remediator stays up, keeps accepting alerts, and /readyz says Docker is down and why.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import requests

from tests.reliability.conftest import (
    Served,
    ServeFactory,
    SleeperFactory,
    alert,
    config_yaml,
    target_yaml,
    wait_for,
    webhook,
)
from tests.support.http_sink import HttpSink

pytestmark = pytest.mark.docker

HOLD_S = 5  # the test must see the pause and cut the engine inside it, under load too
RETRIES = 4
DELAY_S = 2  # between attempts: the short outage ends before the last one, with margin

PLAYBOOK = f"""
name: survive-outage
match: {{alertname: ModelLoadFailure}}
steps:
  - id: before
    phase: diagnose
    action: docker.inspect
  - id: hold
    phase: diagnose
    action: wait
    with: {{duration: {HOLD_S}s}}
  - id: during
    phase: diagnose
    action: docker.inspect
    retries: {RETRIES}
    delay: {DELAY_S}s
    timeout: 5s
    on_failure: escalate
    escalate: {{team: infrastructure, level: notify, reason: "Docker engine unreachable"}}
"""


class EngineProxy:
    """Forwards a unix socket to the engine's; ``cut()`` removes it and drops every open
    connection (as a stopped dockerd does), ``restore()`` brings it back."""

    def __init__(self, path: Path, upstream: str) -> None:
        self.path = path
        self.upstream = upstream
        self._listener: socket.socket | None = None
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()

    def restore(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(self.path))
        listener.listen(64)
        listener.settimeout(0.1)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True,
                         name="engine-proxy").start()

    def cut(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        with self._lock:
            for sock in self._open:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self._open.clear()

    def _connect_upstream(self) -> socket.socket:
        url = urlparse(self.upstream)
        if url.scheme == "unix":
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect(url.path)
            return sock
        return socket.create_connection((url.hostname or "127.0.0.1", url.port or 2375))

    def _accept(self, listener: socket.socket) -> None:
        while self._listener is listener:
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # cut
            client.settimeout(None)
            upstream = self._connect_upstream()
            with self._lock:
                self._open.update((client, upstream))
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for sock in (src, dst):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def engine_proxy() -> Iterator[EngineProxy]:
    # A short directory: unix socket paths are limited to 107 bytes.
    folder = Path(tempfile.mkdtemp(prefix="rt-engine-", dir="/tmp"))
    upstream = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    proxy = EngineProxy(folder / "docker.sock", upstream)
    proxy.restore()
    try:
        yield proxy
    finally:
        proxy.cut()
        shutil.rmtree(folder, ignore_errors=True)


def ready(rem: Served) -> tuple[int, dict[str, Any]]:
    resp = requests.get(f"{rem.url}/readyz", timeout=10)
    return resp.status_code, resp.json()


def execution_where(rem: Served, labels: dict[str, str], state: str | None = None,
                    step: tuple[str, str] | None = None) -> dict[str, Any] | None:
    """The execution of the incident carrying ``labels`` once it matches the filters."""
    incidents = {i["id"]: i for i in rem.items("incidents")}
    for execution in rem.items("executions"):
        incident = incidents.get(execution["incident_id"]) or {}
        if not labels.items() <= incident.get("labels", {}).items():
            continue
        steps = {s["id"]: s["status"] for s in execution["steps"]}
        if state is not None and execution["state"] != state:
            continue
        if step is not None and steps.get(step[0]) != step[1]:
            continue
        return execution
    return None


def test_docker_engine_outage_mid_playbook_is_retried_then_escalated_and_readyz_says_why(
        serve: ServeFactory, sleeper: SleeperFactory, engine_proxy: EngineProxy) -> None:
    box = sleeper()
    with HttpSink(path="/escalations", default_status=202) as sink:
        rem = serve(config_yaml(target_yaml("app-prod", box.name)), {"outage.yml": PLAYBOOK},
                    env={"DOCKER_HOST": f"unix://{engine_proxy.path}",
                         "ESCALATION_WEBHOOK_URL": sink.url})
        code, body = ready(rem)
        replica = body.pop("replica")  # which replica answers (issue 19)
        assert (code, body) == (200, {"ready": True, "store": True, "docker": True,
                                      "paused": False})
        assert replica["role"] == "all" and isinstance(replica["leader"], bool), replica

        # 1. A short outage: the step's retries ride it out.
        short = {"instance": "app-prod:8080"}
        assert rem.post(webhook(alert(instance=short["instance"]))).status_code == 202
        wait_for(lambda: execution_where(rem, short, step=("hold", "running")), 30,
                 "the playbook to reach its pause")
        engine_proxy.cut()
        wait_for(lambda: execution_where(rem, short, step=("during", "running")), 30,
                 "the Docker step to start while the engine is away")
        time.sleep(DELAY_S * 0.75)  # attempts DELAY_S apart fail; a later one finds it back
        engine_proxy.restore()
        done = wait_for(lambda: execution_where(rem, short, state="finished"), 30,
                        "the execution after a short outage")
        during = next(s for s in done["steps"] if s["id"] == "during")
        assert during["status"] == "ok" and during["attempts"] >= 2, during
        assert done["outcome"] == "success", done

        # 2. An outage that outlasts the retries: the step fails, clearly, and escalates.
        long = {"instance": "app-prod-2:8080"}
        assert rem.post(webhook(alert(instance=long["instance"]))).status_code == 202
        wait_for(lambda: execution_where(rem, long, step=("hold", "running")), 30,
                 "the second playbook to reach its pause")
        engine_proxy.cut()
        code, body = ready(rem)
        assert code == 503 and body["docker"] is False and body["store"] is True, body
        assert "Docker engine unreachable" in body["docker_error"], body
        assert str(engine_proxy.path) in body["docker_error"], body
        failed = wait_for(lambda: execution_where(rem, long, state="finished"), 30,
                          "the execution to give up on the engine")
        during = next(s for s in failed["steps"] if s["id"] == "during")
        assert during["status"] == "failed" and during["attempts"] == RETRIES + 1, during
        assert "docker.inspect: Docker engine unreachable" in during["error"], during
        assert failed["outcome"] == "escalated", failed
        told = wait_for(lambda: [r.json() for r in sink.requests
                                 if r.json()["team"] == "infrastructure"], 30,
                        "the escalation to infrastructure")
        assert "Docker engine unreachable" in told[0]["text"], told

        # Still up: live, accepting alerts (recorded for later), not ready, saying why.
        assert rem.alive()
        assert requests.get(f"{rem.url}/healthz", timeout=5).status_code == 200
        assert rem.post(webhook(alert("SomethingElse"))).status_code == 202
        wait_for(lambda: [i for i in rem.items("incidents")
                          if i["alertname"] == "SomethingElse"], 30, "the alert sent meanwhile")
        assert ready(rem)[0] == 503

        engine_proxy.restore()
        wait_for(lambda: ready(rem)[0] == 200, 30, "readiness once the engine is back")
