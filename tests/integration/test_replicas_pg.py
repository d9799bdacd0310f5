"""Replicas of `remediator serve` on one PostgreSQL database, as real processes.

- SIGKILL the replica running an execution in the middle of its fixes: another replica
  finishes it within the lease + 10 s, and the container shows each mutation once,
  counted by the Docker engine's own events.
- PostgreSQL stopped for 30 s under webhook load: every answer while it is down is a 503
  (Alertmanager retries), never a 202; every alert answered 202 before and after is stored;
  the replica answers throughout and recovers by itself.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from remediator.core import defaults
from remediator.store import open_store
from tests.harness.docker_engine import MODELSERVER_IMAGE, Resources
from tests.harness.postgres import Cluster
from tests.harness.processes import Proc, free_port, spawn, stop, wait_ready
from tests.harness.stack import wait
from tests.support.fixtures import ALERTMANAGER
from tests.support.http_sink import HttpSink
from tests.support.playbooks import SLEEPER, TWO_FIXES

TOKEN = "replica-token"
HEADERS = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
FIXTURE = ALERTMANAGER / "firing-model-load-failure.json"

PLAYBOOK = TWO_FIXES


def serve(tmp: Path, db: str, name: str, config: Path, playbooks: Path,
          role: str = "all") -> Proc:
    port = free_port()
    argv = [str(Path(sys.executable).parent / "remediator"), "serve", "--host", "127.0.0.1",
            "--port", str(port), "--db", db, "--config", str(config), "--playbooks",
            str(playbooks), "--replica-id", name, "--role", role]
    os.environ["REMEDIATOR_WEBHOOK_TOKEN"] = TOKEN
    return spawn(name, argv, port, tmp)


def kill(proc: Proc) -> None:
    """SIGKILL the replica's whole process group (gunicorn master and worker): a host dying."""
    os.killpg(proc.process.pid, signal.SIGKILL)
    proc.process.wait(10)


def api(proc: Proc, path: str) -> Any:
    return requests.get(f"{proc.url}{path}", timeout=5, headers=HEADERS).json()


def setup(tmp: Path, container: str | None) -> tuple[Path, Path]:
    config = tmp / "remediator.yml"
    targets = (f"targets:\n  - name: app-prod\n    selector: {{service: app-prod}}\n"
               f"    container: {container}\n    base_url: http://127.0.0.1:1\n"
               f"    bounds: {{max_memory: 1g}}\n") if container else "targets: []\n"
    config.write_text(f"{targets}alertmanager_url: http://127.0.0.1:{free_port()}\n")
    playbooks = tmp / "playbooks"
    playbooks.mkdir()
    if container:
        (playbooks / "two_fixes.yml").write_text(PLAYBOOK)
    return config, playbooks


@pytest.fixture
def any_image(request: pytest.FixtureRequest, docker_resources: Resources) -> str:
    """An image to run a sleeping container from: its content does not matter here, so the
    model server's image as it is, built only when missing."""
    if docker_resources.client.images.list(name=MODELSERVER_IMAGE):
        return MODELSERVER_IMAGE
    images: dict[str, str] = request.getfixturevalue("images")
    return images["modelserver"]


@pytest.mark.docker
def test_sigkill_the_replica_running_an_execution_another_finishes_it_mutating_once(
        tmp_path: Path, pg_url: str, any_image: str, docker_resources: Resources) -> None:
    box = docker_resources.run(any_image, SLEEPER, mem_limit="256m",
                               memswap_limit="256m")
    config, playbooks = setup(tmp_path, box.name)
    since = int(time.time()) - 1
    replicas = {name: serve(tmp_path, pg_url, name, config, playbooks)
                for name in ("r1", "r2")}
    store = open_store(pg_url)
    try:
        for proc in replicas.values():
            wait_ready(proc, "/readyz", timeout=90)
        resp = requests.post(f"{replicas['r1'].url}/api/v1/alerts", timeout=5,
                             data=FIXTURE.read_bytes(), headers=HEADERS)
        assert resp.status_code == 202

        def at_the_slow_fix() -> bool:
            items = api(replicas["r2"], "/api/v1/executions")["items"]
            steps = {s["id"]: s["status"] for s in items[0]["steps"]} if items else {}
            return steps.get("restart") == "ok" and steps.get("settle") == "running"

        wait(at_the_slow_fix, 60, "the restart done and the slow fix step running",
             interval=0.1)
        holder = store.lease_holder("target:app-prod", datetime.now(UTC))
        assert holder in replicas, holder
        kill(replicas[holder])
        killed = time.monotonic()
        (other,) = (proc for name, proc in replicas.items() if name != holder)
        done = wait(lambda: [e for e in api(other, "/api/v1/executions")["items"]
                             if e["state"] == "finished"], defaults.EXECUTION_LEASE_S + 30,
                    "the execution finished by the surviving replica", interval=0.2)
        took = time.monotonic() - killed
        assert done[0]["outcome"] == "success", done[0]
        assert took <= defaults.EXECUTION_LEASE_S + 10, f"took {took:.1f}s after the kill"
        box.reload()
        assert box.attrs["HostConfig"]["Memory"] == 384 * 2**20  # the second fix happened
        events = list(docker_resources.client.events(
            since=since, until=int(time.time()) + 1, decode=True,
            filters={"container": box.id}))
        actions = [e.get("Action") or e.get("status") for e in events]
        assert actions.count("restart") == 1, actions  # each mutation once, by the engine
        assert actions.count("update") == 1, actions
        assert len(api(other, "/api/v1/executions")["items"]) == 1
    finally:
        store.close()
        for proc in replicas.values():
            stop(proc)


@dataclass
class Answer:
    fingerprint: str
    status: int | None  # None: no HTTP answer at all (refused, reset, timed out)
    sent: float
    answered: float


def alert_body(fingerprint: str, alertname: str = "WebhookLoad") -> bytes:
    """An alert of its own (no playbook matches the load's alertname: stored, not run)."""
    body = json.loads(FIXTURE.read_text())
    body["alerts"][0]["fingerprint"] = fingerprint
    body["alerts"][0]["labels"]["seq"] = fingerprint
    body["alerts"][0]["labels"]["alertname"] = alertname
    body["alerts"][0]["annotations"]["summary"] = f"alert {fingerprint}"  # in its messages
    return json.dumps(body).encode()


NOTIFY = """
name: tell
match: {alertname: ModelLoadFailure}
steps:
  - id: tell
    phase: diagnose
    action: notify
    with: {team: ml-team-lead, level: notify, reason: "replica outage test"}
"""

POLICY = """
version: 1
channels:
  slack: {type: slack, webhook_url: {env: SLACK_WEBHOOK_URL}}
teams:
  ml-team-lead: {channels: [slack]}
rules: []
"""


def told(sink: HttpSink, fingerprint: str) -> bool:
    return any(fingerprint in request.text for request in sink.requests)


def test_postgres_stopped_30s_under_webhook_load_is_503_while_down_and_loses_no_acked_alert(
        tmp_path: Path, pg_cluster: Cluster, pg_url: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    config, playbooks = setup(tmp_path, None)
    # A notify playbook on a target no step touches: after the outage the whole chain
    # (intake, worker, escalation, the outbox's dispatcher) must still work.
    (tmp_path / "escalation.yml").write_text(POLICY)
    config.write_text(config.read_text().replace("targets: []\n", (
        "targets:\n  - name: app-prod\n    selector: {service: app-prod}\n"
        "    container: none\n    base_url: http://127.0.0.1:1\n"
        f"escalation_path: {tmp_path / 'escalation.yml'}\n")))
    (playbooks / "tell.yml").write_text(NOTIFY)
    sink = HttpSink().start()
    monkeypatch.setenv("SLACK_WEBHOOK_URL", sink.url)
    proc = serve(tmp_path, pg_url, "r1", config, playbooks)
    answers: list[Answer] = []
    done = threading.Event()

    def sender(number: int) -> None:
        session = requests.Session()
        for seq in range(100000):
            if done.is_set():
                return
            fingerprint = f"{number:02d}{seq:014x}"
            sent = time.monotonic()
            try:
                status: int | None = session.post(
                    f"{proc.url}/api/v1/alerts", data=alert_body(fingerprint),
                    headers=HEADERS, timeout=45).status_code
            except requests.RequestException:
                status = None
            answers.append(Answer(fingerprint, status, sent, time.monotonic()))
            time.sleep(0.05)

    try:
        wait_ready(proc, "/healthz", timeout=90)
        assert requests.post(f"{proc.url}/api/v1/alerts", headers=HEADERS, timeout=10,
                             data=alert_body("canary-before", "ModelLoadFailure")
                             ).status_code == 202
        wait(lambda: told(sink, "canary-before"), 30, "the notification before the outage")
        senders = [threading.Thread(target=sender, args=(n,), daemon=True) for n in range(4)]
        for thread in senders:
            thread.start()
        time.sleep(5)
        pg_cluster.stop()
        down = time.monotonic()
        time.sleep(3)
        ready = requests.get(f"{proc.url}/readyz", timeout=10)
        assert ready.status_code == 503 and ready.json()["store"] is False
        assert requests.get(f"{proc.url}/api/v1/incidents", headers=HEADERS,
                            timeout=10).status_code == 503
        time.sleep(27)
        up = time.monotonic()
        pg_cluster.start()
        time.sleep(10)
        done.set()
        for thread in senders:
            thread.join(60)

        assert {a.status for a in answers} <= {202, 503}, \
            sorted({str(a.status) for a in answers})  # never a 500, never no answer
        while_down = [a for a in answers if a.sent > down and a.answered < up]
        assert while_down and {a.status for a in while_down} == {503}
        after = [a for a in answers if a.sent > up + 5]
        assert after and {a.status for a in after} == {202}  # it recovered by itself
        acked = {a.fingerprint for a in answers if a.status == 202}
        wait(lambda: requests.get(f"{proc.url}/readyz", timeout=10).json()["store"], 30,
             "the replica's store back")
        assert requests.post(f"{proc.url}/api/v1/alerts", headers=HEADERS, timeout=10,
                             data=alert_body("canary-after", "ModelLoadFailure")
                             ).status_code == 202
        wait(lambda: told(sink, "canary-after"), 30, "a notification after the outage")
        store = open_store(pg_url)
        try:
            wait(lambda: store.inbox_depth() == 0, 60, "intake to catch up")
            stored = {i.fingerprint for i in store.incidents(limit=len(answers) + 10)}
        finally:
            store.close()
        assert acked <= stored, f"{len(acked - stored)} acked alerts not stored"
    finally:
        done.set()
        if not pg_cluster.running:
            pg_cluster.start()
        stop(proc)
        sink.stop()


QUICK = """
name: quick
match: {alertname: ModelLoadFailure}
steps:
  - id: settle
    phase: fix
    action: wait
    with: {duration: 0s}
"""


def test_an_intake_replica_takes_the_alerts_and_a_worker_replica_runs_them(
        tmp_path: Path, pg_url: str) -> None:
    config, playbooks = setup(tmp_path, None)
    config.write_text(config.read_text().replace(
        "targets: []\n", "targets:\n  - name: app-prod\n    selector: {service: app-prod}\n"
        "    container: none\n    base_url: http://127.0.0.1:1\n"))
    (playbooks / "quick.yml").write_text(QUICK)
    intake = serve(tmp_path, pg_url, "in-1", config, playbooks, role="intake")
    worker = serve(tmp_path, pg_url, "wk-1", config, playbooks, role="worker")
    try:
        wait_ready(intake, "/readyz", timeout=90)  # the store only: no Docker asked
        wait_ready(worker, "/healthz", timeout=90)
        ready = requests.get(f"{intake.url}/readyz", timeout=5).json()
        assert "docker" not in ready
        assert ready["replica"] == {"id": "in-1", "role": "intake", "leader": False}
        refused = requests.post(f"{worker.url}/api/v1/alerts", data=FIXTURE.read_bytes(),
                                headers=HEADERS, timeout=5)
        assert refused.status_code == 404 and "--role worker" in refused.json()["error"]
        wait(lambda: requests.get(f"{worker.url}/readyz", timeout=5).json()["replica"]
             ["leader"], 30, "the worker replica to lead (the intake one never does)")

        posted = time.monotonic()
        accepted = requests.post(f"{intake.url}/api/v1/alerts", data=FIXTURE.read_bytes(),
                                 headers=HEADERS, timeout=5)
        assert accepted.status_code == 202
        done = wait(lambda: [e for e in api(intake, "/api/v1/executions")["items"]
                             if e["state"] == "finished"], 30, "the worker to run it",
                    interval=0.05)
        took = time.monotonic() - posted
        assert done[0]["outcome"] == "success", done[0]
        # Nothing wakes the worker from the intake process: it polls the inbox.
        assert took < 5, f"{took:.2f}s from the intake's 202 to the worker's end"
    finally:
        stop(intake)
        stop(worker)


def leader_of(replicas: dict[str, Proc]) -> list[str]:
    leading = []
    for name, proc in replicas.items():
        try:
            replica = requests.get(f"{proc.url}/readyz", timeout=2).json()["replica"]
        except requests.RequestException:
            continue
        if replica["leader"]:
            leading.append(name)
    return leading


def test_the_leader_moves_to_another_replica_when_it_dies(tmp_path: Path, pg_url: str) -> None:
    config, playbooks = setup(tmp_path, None)
    replicas = {name: serve(tmp_path, pg_url, name, config, playbooks)
                for name in ("r1", "r2", "r3")}
    try:
        for proc in replicas.values():
            wait_ready(proc, "/readyz", timeout=90)
        (first,) = wait(lambda: leader_of(replicas), 30, "one leader")
        assert leader_of(replicas) == [first]  # one at a time
        metrics = requests.get(f"{replicas[first].url}/metrics", timeout=5).text
        assert "remediator_leader 1.0" in metrics
        kill(replicas.pop(first))
        killed = time.monotonic()
        (second,) = wait(lambda: leader_of(replicas), defaults.LEADER_LEASE_S + 30,
                         "another leader", interval=0.2)
        took = time.monotonic() - killed
        assert second != first
        assert took <= defaults.LEADER_LEASE_S + 10, f"took {took:.1f}s"
        time.sleep(defaults.LEADER_LEASE_S * defaults.LEASE_RENEW_FRACTION + 1)
        assert leader_of(replicas) == [second]  # and it stays one
    finally:
        for proc in replicas.values():
            stop(proc)
