"""Several processes on one store behave as one (issue 19): each backend of conftest.BACKENDS,
with one store object per "replica" on the same database, doing their work at once."""

from __future__ import annotations

import functools
import json
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from remediator.core.config import RemediatorConfig
from remediator.core.playbook import load_playbooks
from remediator.core.targets import Target
from remediator.metrics import ServiceMetrics
from remediator.service.intake import Intake
from remediator.store import Store, open_store
from remediator.store.migrations import SCHEMA_VERSION
from remediator.store.records import InboxItem
from tests.contract.conftest import StoreFactory
from tests.support.fixtures import alertmanager_payload

PLAYBOOK = """
name: restore
match: {alertname: ModelLoadFailure}
steps:
  - id: logs
    action: docker.logs
    phase: diagnose
"""


def together(*work: Callable[[], Any]) -> list[Any]:
    """Run each callable in its own thread, released at the same moment; their results
    (an exception is re-raised here)."""
    start = threading.Barrier(len(work))
    results: list[Any] = [None] * len(work)

    def run(index: int, each: Callable[[], Any]) -> None:
        start.wait()
        try:
            results[index] = each()
        except BaseException as exc:  # handed to the test below
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i, each)) for i, each in enumerate(work)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results


def payload(fingerprint: str) -> bytes:
    body = json.loads(alertmanager_payload("firing-model-load-failure.json"))
    body["alerts"][0]["fingerprint"] = fingerprint
    return json.dumps(body).encode()


def make_intake(tmp_path: Path, max_runs_per_hour: int) -> Callable[[Store], Intake]:
    books = tmp_path / "playbooks"
    books.mkdir(exist_ok=True)
    (books / "restore.yml").write_text(PLAYBOOK)
    target = Target(name="app-prod", selector={"service": "app-prod"}, container="app-prod",
                    base_url="http://127.0.0.1:1")
    config = RemediatorConfig(targets=[target], max_runs_per_hour=max_runs_per_hour)
    playbooks = load_playbooks(books, config.targets)
    return lambda store: Intake(store, config, playbooks, ServiceMetrics(CollectorRegistry()))


@pytest.fixture
def intake_for(tmp_path: Path) -> Callable[[Store], Intake]:
    return make_intake(tmp_path, max_runs_per_hour=100)


@pytest.fixture
def slow_decisions(monkeypatch: pytest.MonkeyPatch) -> None:
    """Intake takes a while between reading what exists (the incident's key, the runs of
    the last hour) and writing its decision: the window in which another replica's
    intake would read the same and decide the same, were they not serialized."""
    decide = Intake._why_not

    def slowly(self: Intake, *args: Any) -> str | None:
        time.sleep(0.2)
        return decide(self, *args)

    monkeypatch.setattr(Intake, "_why_not", slowly)


@pytest.mark.usefixtures("slow_decisions")
def test_the_same_alert_posted_to_two_replicas_is_one_incident_with_one_execution(
        store: Store, reopen: StoreFactory, intake_for: Callable[[Store], Intake],
        caplog: pytest.LogCaptureFixture) -> None:
    replicas = [store, reopen()]
    intakes = [intake_for(each) for each in replicas]
    alerts = [f"fp{n:03d}" for n in range(4)]
    for fingerprint in alerts:
        # Both replicas' webhooks commit the alert (two Alertmanagers, or a retry that
        # reached the other replica), then each one's intake processes the row it received,
        # at the same moment.
        body = payload(fingerprint)
        received = [each.record_inbox([body])[0] for each in replicas]
        together(*(functools.partial(intake.process, [InboxItem(row, body, "")])
                   for intake, row in zip(intakes, received, strict=True)))
    incidents = store.incidents(limit=100)
    assert sorted(i.fingerprint for i in incidents) == alerts  # one each
    assert all(i.notices == 2 for i in incidents)  # both notices counted, on one incident
    executions = store.executions(limit=100)
    assert sorted(e.incident_id or 0 for e in executions) == sorted(i.id for i in incidents)
    assert store.inbox_depth() == 0 and store.dead_letters() == []
    # Not by luck of a retry: no intake transaction failed on the other's insert.
    assert [r.getMessage() for r in caplog.records if r.name == "remediator.service.intake"
            and r.levelno >= logging.ERROR] == []


@pytest.mark.usefixtures("slow_decisions")
def test_the_hourly_budget_holds_across_replicas(store: Store, reopen: StoreFactory,
                                                 tmp_path: Path) -> None:
    # Two different alerts on one target reach two replicas at once; the target may run
    # once an hour: one execution, not one per replica (the budget is read, then written).
    intake_for = make_intake(tmp_path, max_runs_per_hour=1)
    replicas = [store, reopen()]
    work = []
    for each, fingerprint in zip(replicas, ("first", "second"), strict=True):
        body = payload(fingerprint)
        item = InboxItem(each.record_inbox([body])[0], body, "")
        work.append(functools.partial(intake_for(each).process, [item]))
    together(*work)
    assert store.count("incidents") == 2 and store.count("executions") == 1
    (refused,) = [i for i in store.incidents() if i.note]
    assert "budget" in (refused.note or "") or "per hour" in (refused.note or "")


def test_one_inbox_item_drained_by_two_replicas_at_once_counts_once(
        store: Store, reopen: StoreFactory, intake_for: Callable[[Store], Intake]) -> None:
    other = reopen()
    for n in range(10):
        store.record_inbox([payload(f"one{n}")])
        together(intake_for(store).drain, intake_for(other).drain)
    assert [i.notices for i in store.incidents(limit=100)] == [1] * 10
    assert store.count("executions") == 10 and store.inbox_depth() == 0


def test_replicas_opening_a_new_store_at_once_migrate_it_once(
        backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    if backend == "postgres":
        location = request.getfixturevalue("pg_cluster").create_database(migrated=False)
    else:
        location = str(tmp_path / "new.db")
    opened: list[Store] = together(*(lambda: open_store(location) for _ in range(4)))
    try:
        assert [each.schema_version() for each in opened] == [SCHEMA_VERSION] * 4
        (inbox_id,) = opened[0].record_inbox([b"{}"])
        assert [i.id for i in opened[3].unprocessed_inbox()] == [inbox_id]
    finally:
        for each in opened:
            each.close()
