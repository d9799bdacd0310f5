"""One process acts on a store: `serve` locks it, and dispatch claims an execution
atomically, so an execution cancelled (or taken) after the dispatcher read it never runs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from remediator.adapters.store_lock import lock_store
from remediator.errors import StoreError
from remediator.escalation import claim_incident
from remediator.store.sqlite import SqliteStore as Store
from tests.support.escalation_kit import (
    T0,
    alert_in,
    escalation_service,
    firing,
    policy_from_yaml,
)
from tests.support.fakes import model_app

POLICY = """
version: 1
channels:
  slack: {type: slack, webhook_url: {env: SLACK_WEBHOOK_URL}}
teams:
  ml-team-lead: {channels: [slack]}
rules: []
"""


def test_a_second_lock_on_one_store_is_refused_naming_the_holder_pid_and_file(
        tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    held = lock_store(db)
    assert held is not None
    with pytest.raises(StoreError) as refused:
        lock_store(db)
    assert f"pid {os.getpid()}" in str(refused.value)
    assert f"{db}.lock" in str(refused.value)
    Store(db).close()  # the store itself stays open to others (CLI, gunicorn's worker)
    held.release()
    again = lock_store(db)  # released: the next serve may start
    assert again is not None
    again.release()


def test_an_execution_cancelled_after_the_dispatcher_read_it_does_not_run(
        tmp_path: Path) -> None:
    runtime = model_app()
    service = escalation_service(tmp_path, policy_from_yaml(POLICY), {}, runtime=runtime)
    try:
        alert_in(service, firing(T0))
        (row,) = service.store.executions_in_state("pending")  # what dispatch read
        claim_incident(service.store, int(row["incident_id"]), "bob", T0)  # cancels it
        assert service.worker.run_execution(row) is None
        assert runtime.calls == []
        (ex,) = service.store.executions()
        assert ex["state"] == "cancelled" and ex["started_at"] is None
        # of two dispatchers that read one pending row, only the first starts it
        again = service.store.add_replay(int(row["id"]), dry_run=False)
        assert again is not None
        assert service.store.claim_execution(again) is True
        assert service.store.claim_execution(again) is False
    finally:
        service.close()
