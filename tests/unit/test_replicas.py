"""Replicas on one store act as one Remediator: each execution runs once, a dead replica's
execution is taken over when its lease runs out (no mutating step applied twice), one
execution per target across replicas, one leader at a time; `--role` splits the work.

Two workers here are two replicas: each its own store connection to one database file,
its own replica id, one settable clock (leases are judged by the moments passed in).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from prometheus_client import CollectorRegistry

from remediator.core import defaults
from remediator.core.config import RemediatorConfig
from remediator.core.playbook import load_playbooks
from remediator.core.results import ExecutionResult, Outcome
from remediator.core.targets import Target
from remediator.metrics import ServiceMetrics
from remediator.service.build import build_service
from remediator.service.cli import main as cli
from remediator.service.leases import Leases
from remediator.service.web import NOT_HERE, create_app
from remediator.service.worker import Worker
from remediator.store import open_store
from remediator.store.records import Execution
from tests.support.fixtures import alertmanager_payload
from tests.support.services import APP_PROD

TOKEN = "replica-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
LEASE = timedelta(seconds=defaults.EXECUTION_LEASE_S)

PLAYBOOK = """
name: skeleton
match: {alertname: ModelLoadFailure}
steps:
  - id: logs
    action: docker.logs
    phase: diagnose
  - id: restore
    action: docker.copy
    phase: fix
    with: {src: /backup/models/best_model.pth, dest: /app/models/best_model.pth}
  - id: restart
    action: docker.restart
    phase: fix
  - id: healthy
    action: http.check
    phase: validate
    with: {path: /health, expect: {status: healthy}}
"""


class Clock:
    """One wall clock for every replica of a test, moved by hand."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


class Runtime:
    """Answers every action; logs (replica, action) in a log shared by the replicas, and
    can hold the run inside one action until released (a replica stuck or dying there)."""

    def __init__(self, name: str, log: list[tuple[str, str]], hold_at: str | None = None
                 ) -> None:
        self.name, self.log, self.hold_at = name, log, hold_at
        self.inside = threading.Event()
        self.release = threading.Event()

    def call(self, action: str, args: dict[str, Any], target: Target,
             timeout: float) -> dict[str, Any]:
        self.log.append((self.name, action))
        if action == self.hold_at:
            self.inside.set()
            assert self.release.wait(20), "the test never released the held step"
        if action == "http.check":
            return {"ok": True, "status_code": 200, "output": "200",
                    "body": {"status": "healthy"}}
        return {"output": f"{action} done"}


def replica(tmp_path: Path, name: str, runtime: Runtime, clock: Clock) -> Worker:
    """A worker with its own connection to the shared store and its own replica id."""
    books = tmp_path / "playbooks"
    if not books.exists():
        books.mkdir()
        (books / "skeleton.yml").write_text(PLAYBOOK)
    store = open_store(tmp_path / "r.db")
    config = RemediatorConfig(targets=[APP_PROD], max_runs_per_hour=50)
    return Worker(store, config, load_playbooks(books, config.targets), runtime,
                  ServiceMetrics(CollectorRegistry()), leases=Leases(store, name, clock=clock))


def alert_in(worker: Worker, fingerprint: str = "f1") -> Execution:
    """Store one firing alert and let intake make its execution; returns it as read."""
    body = json.loads(alertmanager_payload("firing-model-load-failure.json"))
    body["alerts"][0]["fingerprint"] = fingerprint
    body["alerts"][0]["labels"]["seq"] = fingerprint  # another alert, on the same target
    worker.store.record_inbox([json.dumps(body).encode()])
    worker.intake.drain()
    return worker.store.executions_in_state("pending")[-1]


def in_thread(run: Callable[[], ExecutionResult | None]
              ) -> tuple[threading.Thread, list[ExecutionResult | None]]:
    out: list[ExecutionResult | None] = []
    thread = threading.Thread(target=lambda: out.append(run()), daemon=True)
    thread.start()
    return thread, out


@pytest.fixture
def replicas(tmp_path: Path) -> Any:
    made: list[Worker] = []

    def make(name: str, runtime: Runtime, clock: Clock) -> Worker:
        worker = replica(tmp_path, name, runtime, clock)
        made.append(worker)
        return worker

    yield make
    for worker in made:
        worker.store.close()


def test_two_replicas_racing_for_one_execution_run_it_once(replicas: Any) -> None:
    log: list[tuple[str, str]] = []
    clock = Clock()
    a, b = replicas("a", Runtime("a", log), clock), replicas("b", Runtime("b", log), clock)
    row = alert_in(a)
    start = threading.Barrier(2)

    def race(worker: Worker) -> Callable[[], ExecutionResult | None]:
        mine = worker.store.execution(row.id)
        assert mine is not None

        def run() -> ExecutionResult | None:
            start.wait()
            return worker.run_execution(mine)

        return run

    runs = [in_thread(race(a)), in_thread(race(b))]
    for thread, _ in runs:
        thread.join(20)
    results = [out[0] for _, out in runs]
    assert sum(result is not None for result in results) == 1
    assert [action for _, action in log].count("docker.copy") == 1
    assert len({who for who, _ in log}) == 1  # every step on one replica
    done = a.store.execution(row.id)
    assert done is not None and done.outcome == "success"


def test_a_replica_dying_in_diagnosis_is_taken_over_after_its_lease_and_fixes_once(
        replicas: Any) -> None:
    log: list[tuple[str, str]] = []
    clock = Clock()
    stuck = Runtime("a", log, hold_at="docker.logs")
    a, b = replicas("a", stuck, clock), replicas("b", Runtime("b", log), clock)
    row = alert_in(a)
    thread, a_out = in_thread(lambda: a.run_execution(row))
    assert stuck.inside.wait(10)
    running = b.store.executions_in_state("running")
    assert b.run_execution(running[0]) is None  # a's lease is live: b leaves it alone
    assert b.store.lease_holder(f"target:{row.target}", clock()) == "a"

    clock.advance(LEASE + timedelta(seconds=1))  # a stopped renewing: it died
    result = b.run_execution(b.store.executions_in_state("running")[0])
    assert result is not None and result.outcome is Outcome.SUCCESS
    stuck.release.set()  # a comes back to life: its lease is gone, it must not act
    thread.join(10)
    (a_result,) = a_out
    assert a_result is not None and a_result.outcome is Outcome.ABORTED
    assert log.count(("b", "docker.copy")) == 1 and ("a", "docker.copy") not in log
    done = b.store.execution(row.id)
    assert done is not None and done.outcome == "success"  # a stored nothing over it
    assert {s.id: s.status.value for s in b.store.steps(row.id)}["restore"] == "ok"


def test_a_replica_dying_mid_mutation_is_taken_over_without_repeating_it(
        replicas: Any) -> None:
    log: list[tuple[str, str]] = []
    clock = Clock()
    stuck = Runtime("a", log, hold_at="docker.copy")
    a, b = replicas("a", stuck, clock), replicas("b", Runtime("b", log), clock)
    row = alert_in(a)
    thread, _ = in_thread(lambda: a.run_execution(row))
    assert stuck.inside.wait(10)
    clock.advance(LEASE + timedelta(seconds=1))
    result = b.run_execution(b.store.executions_in_state("running")[0])
    # Nobody knows whether a's copy took effect: not run again, escalated (runner's rule).
    assert result is not None and result.outcome is Outcome.ESCALATED
    stuck.release.set()
    thread.join(10)
    assert [action for _, action in log].count("docker.copy") == 1
    assert ("a", "docker.restart") not in log
    steps = {s.id: s for s in b.store.steps(row.id)}
    assert steps["restore"].status.value == "failed"  # b's verdict, not a's late "ok"
    done = b.store.execution(row.id)
    assert done is not None and done.outcome == "escalated"


def test_a_run_whose_renewal_says_it_was_taken_over_stops_before_its_next_mutation(
        replicas: Any) -> None:
    log: list[tuple[str, str]] = []
    slow, fast = Clock(), Clock()  # a's clock lags: it still believes its lease is live
    stuck = Runtime("a", log, hold_at="docker.logs")
    a, b = replicas("a", stuck, slow), replicas("b", Runtime("b", log), fast)
    row = alert_in(a)
    thread, a_out = in_thread(lambda: a.run_execution(row))
    assert stuck.inside.wait(10)
    fast.advance(LEASE + timedelta(seconds=1))
    assert b.run_execution(b.store.executions_in_state("running")[0]) is not None
    a.leases.renew_runs()  # the store says: no longer a's
    stuck.release.set()
    thread.join(10)
    (a_result,) = a_out
    assert a_result is not None and a_result.outcome is Outcome.ABORTED
    assert [who for who, action in log if action == "docker.copy"] == ["b"]
    done = b.store.execution(row.id)
    assert done is not None and done.outcome == "success"


def test_one_execution_per_target_across_replicas(replicas: Any) -> None:
    log: list[tuple[str, str]] = []
    clock = Clock()
    busy = Runtime("a", log, hold_at="docker.logs")
    a, b = replicas("a", busy, clock), replicas("b", Runtime("b", log), clock)
    first = alert_in(a, "f1")
    second = alert_in(a, "f2")
    assert first.id != second.id and first.target == second.target
    thread, _ = in_thread(lambda: a.run_execution(first))
    assert busy.inside.wait(10)
    b._dispatch()  # both are on app-prod: a holds the target
    assert b._busy == {}
    assert b.run_execution(second) is None
    assert [who for who, _ in log] == ["a"]
    busy.release.set()
    thread.join(10)
    b._dispatch()  # the target is free again
    for future in set(b._busy.values()):
        future.result(10)
    assert {e.id: e.outcome for e in b.store.executions()} == {first.id: "success",
                                                              second.id: "success"}
    assert ("b", "docker.copy") in log


def test_the_leader_moves_when_its_holder_stops_renewing(tmp_path: Path) -> None:
    clock = Clock()
    one, two = open_store(tmp_path / "r.db"), open_store(tmp_path / "r.db")
    try:
        a, b = Leases(one, "a", clock=clock), Leases(two, "b", clock=clock)
        assert a.renew_leader() and not b.renew_leader()
        clock.advance(timedelta(seconds=defaults.LEADER_LEASE_S / 3))
        assert a.renew_leader() and not b.renew_leader()  # renewed: still a's
        clock.advance(timedelta(seconds=defaults.LEADER_LEASE_S + 1))  # a went silent
        assert not a.is_leader  # its own view ends with its last confirmed lease
        assert b.renew_leader() and b.is_leader
        assert not a.renew_leader()
        b.resign()  # a clean stop hands it over at once
        assert a.renew_leader()
        intake_only = Leases(two, "c", clock=clock, candidate=False)
        clock.advance(timedelta(seconds=defaults.LEADER_LEASE_S + 1))
        assert not intake_only.renew_leader()  # an intake replica never leads
    finally:
        one.close()
        two.close()


def test_only_the_leader_does_housekeeping(replicas: Any) -> None:
    clock = Clock()
    a, b = replicas("a", Runtime("a", []), clock), replicas("b", Runtime("b", []), clock)
    calls: list[str] = []
    for worker in (a, b):
        worker.close_stable = (lambda w=worker: calls.append(w.leases.replica_id)  # type: ignore[method-assign]
                               or [])
    a.leases.renew_leader()
    b.leases.renew_leader()
    a.tick()
    b.tick()
    assert calls == ["a"]


def test_an_intake_replica_stores_alerts_and_runs_nothing(tmp_path: Path) -> None:
    books = tmp_path / "playbooks"
    books.mkdir()
    (books / "skeleton.yml").write_text(PLAYBOOK)
    # No runtime given: an `all` replica would build the Docker one; intake needs none.
    service = build_service(RemediatorConfig(targets=[APP_PROD]), db_path=tmp_path / "r.db",
                            playbooks_dir=books, token=TOKEN, role="intake",
                            replica_id="in-1")
    try:
        service.start()
        assert not service.leases.candidate
        client = create_app(service).test_client()
        resp = client.post("/api/v1/alerts", headers=AUTH, content_type="application/json",
                           data=alertmanager_payload("firing-model-load-failure.json"))
        assert resp.status_code == 202
        assert service.store.inbox_depth() == 1  # stored, left for the worker replicas
        ready = client.get("/readyz")
        assert ready.status_code == 200
        body = ready.get_json()
        assert "docker" not in body and body["store"] is True
        assert body["replica"] == {"id": "in-1", "role": "intake", "leader": False}
        assert 'remediator_replica_info{replica_id="in-1",role="intake"} 1.0' in \
            client.get("/metrics").get_data(as_text=True)
    finally:
        service.close()


def test_a_worker_replica_refuses_the_webhook_saying_where_to_send_it(
        tmp_path: Path) -> None:
    books = tmp_path / "playbooks"
    books.mkdir()
    (books / "skeleton.yml").write_text(PLAYBOOK)
    service = build_service(RemediatorConfig(targets=[APP_PROD]), db_path=tmp_path / "r.db",
                            playbooks_dir=books, token=TOKEN, role="worker",
                            replica_id="w-1", runtime=Runtime("w-1", []))
    try:
        client = create_app(service).test_client()
        resp = client.post("/api/v1/alerts", headers=AUTH, content_type="application/json",
                           data=alertmanager_payload("firing-model-load-failure.json"))
        assert resp.status_code == 404
        assert resp.get_json() == {"error": NOT_HERE}
        assert "--role all or --role intake" in NOT_HERE
        assert service.store.inbox_depth() == 0
        service.leases.renew_leader()
        body = client.get("/readyz").get_json()
        assert body["replica"] == {"id": "w-1", "role": "worker", "leader": True}
        assert "remediator_leader 1.0" in client.get("/metrics").get_data(as_text=True)
    finally:
        service.close()


def test_with_the_store_gone_the_webhook_and_api_answer_503_and_health_still_answers(
        tmp_path: Path) -> None:
    books = tmp_path / "playbooks"
    books.mkdir()
    (books / "skeleton.yml").write_text(PLAYBOOK)
    service = build_service(RemediatorConfig(targets=[APP_PROD]), db_path=tmp_path / "r.db",
                            playbooks_dir=books, token=TOKEN, runtime=Runtime("x", []))
    client = create_app(service).test_client()
    service.store.close()  # every read and write now fails (as with a database away)
    for leftover in tmp_path.glob("r.db*"):
        leftover.unlink()
    (tmp_path / "r.db").write_bytes(b"not a database " * 512)
    try:
        resp = client.post("/api/v1/alerts", headers=AUTH, content_type="application/json",
                           data=alertmanager_payload("firing-model-load-failure.json"))
        assert resp.status_code == 503  # never 202 for an alert not stored
        assert client.get("/api/v1/incidents", headers=AUTH).status_code == 503
        ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.get_json()["store"] is False
        assert client.get("/metrics").status_code == 200
        assert client.get("/healthz").status_code == 200
    finally:
        service.writer.close()


@pytest.mark.parametrize("role", ["intake", "worker"])
def test_a_split_role_on_a_sqlite_store_is_refused_saying_why(tmp_path: Path,
                                                              role: str) -> None:
    config = tmp_path / "remediator.yml"
    config.write_text("targets: []\n")
    result = CliRunner().invoke(cli, ["serve", "--config", str(config), "--role", role,
                                      "--db", str(tmp_path / "r.db")],
                                env={"REMEDIATOR_WEBHOOK_TOKEN": TOKEN})
    assert result.exit_code == 2
    assert f"--role {role}" in result.output and "postgresql://" in result.output
    assert not (tmp_path / "r.db").exists()  # refused before anything was made


def test_a_run_that_ends_during_a_renewal_round_leaves_its_target_free(
        replicas: Any) -> None:
    clock = Clock()
    a = replicas("a", Runtime("a", []), clock)
    row = alert_in(a)
    keys = (f"target:{row.target}",)
    assert a.leases.take_keys(keys)
    assert a.store.claim_execution(row.id, False, owner="a",
                                   lease_until=a.leases.run_until(), now=clock())
    run = a.leases.begin(row.id, keys, a.leases.run_until())
    renew = a.store.renew_execution_lease

    ender = threading.Thread(target=a.leases.end, args=(run,))

    def end_meanwhile(execution_id: int, owner: str, lease_until: Any) -> bool:
        renewed = renew(execution_id, owner, lease_until)
        ender.start()  # the worker ends the run between the renewal and its keys' renewal
        ender.join(0.3)
        return renewed

    a.store.renew_execution_lease = end_meanwhile  # type: ignore[method-assign]
    a.leases.renew_runs()
    ender.join(5)
    assert a.store.lease_holder(keys[0], clock()) is None  # not held on for a finished run


def test_a_renewal_round_does_not_free_the_next_run_on_the_same_target(
        replicas: Any) -> None:
    # Run 1 ends during a renewal round and run 2 on the same target starts at once on
    # this replica: the round must not release the target lease run 2 now holds (another
    # replica could then run a second execution on the target).
    clock = Clock()
    a = replicas("a", Runtime("a", []), clock)
    first, second = alert_in(a), alert_in(a, fingerprint="second")
    keys = (f"target:{first.target}",)
    assert a.leases.take_keys(keys)
    assert a.store.claim_execution(first.id, False, owner="a",
                                   lease_until=a.leases.run_until(), now=clock())
    run = a.leases.begin(first.id, keys, a.leases.run_until())
    renew = a.store.renew_execution_lease
    started: list[bool] = []

    def next_run() -> None:
        a.leases.end(run)
        started.append(a.leases.take_keys(keys))
        a.leases.begin(second.id, keys, a.leases.run_until())

    worker = threading.Thread(target=next_run)

    def end_meanwhile(execution_id: int, owner: str, lease_until: Any) -> bool:
        renewed = renew(execution_id, owner, lease_until)
        worker.start()
        worker.join(0.3)
        return renewed

    a.store.renew_execution_lease = end_meanwhile  # type: ignore[method-assign]
    a.leases.renew_runs()
    worker.join(5)
    assert started == [True]
    assert a.store.lease_holder(keys[0], clock()) == "a"  # run 2's, still held
