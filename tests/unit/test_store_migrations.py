"""Versioned migrations: a store made by an older Remediator opens, is migrated, and reads
back through the store's API with the values it had (issue 17).

``tests/fixtures/stores/legacy-52b902a.db`` was made by main at 52b902a (schema version 3)
with ``make up`` and ``make demo``: 6 incidents (one reopened, one fixed and closed), 5
executions with their steps, 14 notifications with 36 deliveries, 12 inbox rows.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from remediator.core.alerts import parse_alert
from remediator.store import Store, open_store
from remediator.store.migrations import MIGRATIONS, SCHEMA_VERSION

LEGACY = Path(__file__).resolve().parents[1] / "fixtures" / "stores" / "legacy-52b902a.db"


def raw(path: Path, sql: str) -> list[dict[str, Any]]:
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.row_factory = sqlite3.Row
        return [dict(row) for row in db.execute(sql).fetchall()]


@pytest.fixture
def legacy(tmp_path: Path) -> Path:
    copy = tmp_path / "remediator.db"
    shutil.copyfile(LEGACY, copy)  # the fixture itself is never migrated
    return copy


@pytest.fixture
def migrated(legacy: Path) -> Any:
    store = open_store(legacy)
    yield store
    store.close()


def test_the_legacy_store_is_version_3_and_opens_migrated_to_the_current_version(
        legacy: Path) -> None:
    assert raw(legacy, "PRAGMA user_version")[0]["user_version"] == 3
    store = open_store(legacy)
    try:
        assert store.schema_version() == SCHEMA_VERSION == len(MIGRATIONS) == 5
    finally:
        store.close()
    # Recorded in the database: opening it again applies nothing.
    assert raw(legacy, "PRAGMA user_version")[0]["user_version"] == 5
    again = open_store(legacy)
    try:
        assert again.schema_version() == 5 and again.count("incidents") == 6
    finally:
        again.close()


def test_incidents_read_back_with_their_values(legacy: Path) -> None:
    before = {row["id"]: row for row in raw(legacy, "SELECT * FROM incidents")}
    store: Store = open_store(legacy)
    try:
        assert len(before) == 6
        for number, row in before.items():
            incident = store.incident(number)
            assert incident is not None
            assert (incident.incident_key, incident.fingerprint, incident.alertname,
                    incident.starts_at, incident.status.value, dict(incident.labels),
                    dict(incident.annotations), incident.generator_url, incident.target,
                    incident.note, incident.notices, incident.created_at,
                    incident.updated_at, incident.resolved_at, incident.claimed_by,
                    incident.claimed_at, incident.fixed_at, incident.closed_at,
                    incident.reopened) == (
                row["incident_key"], row["fingerprint"], row["alertname"],
                row["starts_at"], row["status"], json.loads(row["labels"]),
                json.loads(row["annotations"]), row["generator_url"], row["target"],
                row["note"], row["notices"], row["created_at"], row["updated_at"],
                row["resolved_at"], row["claimed_by"], row["claimed_at"], row["fixed_at"],
                row["closed_at"], row["reopened"])
        assert [i.id for i in store.incidents()] == sorted(before, reverse=True)
        # The reopened incident is still found by its re-fire's key (an alias).
        (alias,) = raw(legacy, "SELECT * FROM incident_aliases")
        assert store.incident_ids_for_keys([alias["incident_key"]]) == {alias["incident_id"]}
    finally:
        store.close()


def test_executions_and_their_steps_read_back_with_their_values(legacy: Path) -> None:
    before = raw(legacy, "SELECT * FROM executions ORDER BY id")
    steps = raw(legacy, "SELECT * FROM steps ORDER BY execution_id, position")
    store: Store = open_store(legacy)
    try:
        assert len(before) == 5 and len(steps) > 0
        for row in before:
            execution = store.execution(row["id"])
            assert execution is not None
            assert (execution.incident_id, execution.playbook, execution.target,
                    execution.state.value, execution.outcome, execution.scenario,
                    execution.dry_run, execution.replay_of, execution.error,
                    [dict(e) for e in execution.escalations], execution.created_at,
                    execution.started_at, execution.finished_at) == (
                row["incident_id"], row["playbook"], row["target"], row["state"],
                row["outcome"], row["scenario"], bool(row["dry_run"]), row["replay_of"],
                row["error"], json.loads(row["escalations"]), row["created_at"],
                row["started_at"], row["finished_at"])
            # The alert comes back parsed, the same alert that was stored.
            assert execution.alert == parse_alert(json.loads(row["alert"]))
            own = [s for s in steps if s["execution_id"] == row["id"]]
            assert [(s.id, s.action, s.phase, s.status.value, s.attempts, s.started_at,
                     s.duration_s, dict(s.outputs), dict(s.rendered_args), s.error, s.note)
                    for s in execution.steps] == [
                (s["step_id"], s["action"], s["phase"], s["status"], s["attempts"],
                 s["started_at"], s["duration_s"], json.loads(s["outputs"]),
                 json.loads(s["rendered_args"]), s["error"], s["note"]) for s in own]
        # Finished before migration 4: their escalation was handled then, none is pending.
        assert store.pending_escalations() == []
        assert store.executions_in_state("pending", "running") == []
    finally:
        store.close()


def test_notifications_and_deliveries_read_back_with_their_values(legacy: Path) -> None:
    before = raw(legacy, "SELECT * FROM notifications ORDER BY id DESC")
    deliveries = raw(legacy, "SELECT * FROM deliveries ORDER BY id")
    store: Store = open_store(legacy)
    try:
        found = store.notifications(100)
        assert len(found) == len(before) == 14
        for notification, row in zip(found, before, strict=True):
            assert (notification.id, notification.incident_id, notification.kind.value,
                    notification.dedup_key, notification.team, notification.level,
                    notification.severity, notification.rule, notification.reason,
                    dict(notification.message), notification.status.value,
                    notification.status_reason, notification.trigger_id,
                    notification.created_at, notification.updated_at,
                    notification.criteria) == (
                row["id"], row["incident_id"], row["kind"], row["dedup_key"], row["team"],
                row["level"], row["severity"], row["rule"], row["reason"],
                json.loads(row["message"]), row["status"], row["status_reason"],
                row["trigger_id"], row["created_at"], row["updated_at"], None)
            assert [(d.channel, d.channel_type, d.status.value, d.attempts,
                     d.next_attempt_at, d.last_error, d.detail, d.delivered_at)
                    for d in notification.deliveries] == [
                (d["channel"], d["channel_type"], d["status"], d["attempts"],
                 d["next_attempt_at"], d["last_error"], d["detail"], d["delivered_at"])
                for d in deliveries if d["notification_id"] == row["id"]]
        # The dedup of what was sent before carries on: the same trigger is not sent twice.
        trigger = next(row for row in before if row["kind"] == "trigger")
        assert store.notification_exists(trigger["dedup_key"], "trigger")
    finally:
        store.close()


def test_the_rest_of_the_legacy_store_is_kept(migrated: Store, legacy: Path) -> None:
    settings = {r["key"]: r["value"] for r in raw(legacy, "SELECT * FROM settings")}
    assert migrated.instance_id == settings["instance_id"]  # dedup keys stay the same
    assert migrated.inbox_depth() == 0 and migrated.count("inbox") == 12
    (good,) = raw(legacy, "SELECT * FROM last_known_good")
    record = migrated.last_known_good_record(good["target"])
    assert record is not None and (record.image, dict(record.config), record.recorded_at) == (
        good["image"], json.loads(good["config"]), good["recorded_at"])
