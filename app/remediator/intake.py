"""From stored webhook payloads to incidents and pending executions, exactly once.

One inbox row is processed in one transaction: its incidents, their executions and the
row's `processed_at` commit together, so a crash replays the row without doubling anything.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from remediator.adapters.store import Store, ago, utcnow
from remediator.core.alerts import Alert, AlertStatus, parse_webhook
from remediator.core.config import RemediatorConfig
from remediator.core.playbook import Playbook, select_playbook
from remediator.core.targets import Target, match_target
from remediator.errors import PayloadError
from remediator.metrics import ServiceMetrics

__all__ = ["Intake", "IntakeEvent"]

log = logging.getLogger("remediator.intake")

CHUNK = 32
"""Payloads processed per transaction: short, so webhook commits are not kept waiting."""


@dataclass(frozen=True)
class IntakeEvent:
    incident_id: int
    kind: str  # new | duplicate | resolved | unmatched
    execution_id: int | None = None


class Intake:
    def __init__(self, store: Store, config: RemediatorConfig, playbooks: Sequence[Playbook],
                 metrics: ServiceMetrics) -> None:
        self.store = store
        self.config = config
        self.playbooks = list(playbooks)
        self.metrics = metrics

    def drain(self, limit: int = 256) -> list[IntakeEvent]:
        """Process stored payloads in short transactions (the webhook's writer shares the
        write lock); a payload that breaks its chunk alone is moved to the dead letters
        (kept, with the reason) so it cannot block the rest."""
        rows = [(int(r["id"]), bytes(r["body"])) for r in self.store.unprocessed_inbox(limit)]
        events: list[IntakeEvent] = []
        for start in range(0, len(rows), CHUNK):
            chunk = rows[start:start + CHUNK]
            try:
                events += self._process(chunk)
            except Exception:
                log.exception("intake chunk failed; retrying its %d payloads one by one",
                              len(chunk))
                events += [e for row in chunk for e in self._process_alone(*row)]
        self.metrics.inbox_depth.set(self.store.inbox_depth())
        return events

    def process_row(self, inbox_id: int, body: bytes) -> list[IntakeEvent]:
        return self._process([(inbox_id, body)])

    def _process(self, rows: list[tuple[int, bytes]]) -> list[IntakeEvent]:
        parsed = [(inbox_id, self._alerts(inbox_id, body)) for inbox_id, body in rows]
        events: list[IntakeEvent] = []
        now = utcnow()
        with self.store.transaction() as db:
            for inbox_id, alerts in parsed:
                events += [self._one(db, alert) for alert in alerts]
                db.execute("UPDATE inbox SET processed_at = ? WHERE id = ?", (now, inbox_id))
        return events

    def _process_alone(self, inbox_id: int, body: bytes) -> list[IntakeEvent]:
        try:
            return self._process([(inbox_id, body)])
        except Exception as exc:
            log.exception("inbox row %s cannot be processed; kept as a dead letter", inbox_id)
            with self.store.transaction() as db:
                self.store.insert_dead_letter(db, body, f"intake failed: {exc}",
                                              "application/json")
                db.execute("UPDATE inbox SET processed_at = ? WHERE id = ?",
                           (utcnow(), inbox_id))
            return []

    @staticmethod
    def _alerts(inbox_id: int, body: bytes) -> list[Alert]:
        try:
            return parse_webhook(body).alerts
        except PayloadError as exc:  # validated at intake; only a schema change gets here
            log.error("inbox row %s no longer parses: %s", inbox_id, exc)
            return []

    def _one(self, db: sqlite3.Connection, alert: Alert) -> IntakeEvent:
        self.metrics.alerts_received.labels(status=alert.status.value).inc()
        existing = self.store.incident_by_key(db, alert.incident_key)
        if existing is not None:
            return self._known(db, existing, alert)
        return self._new(db, alert)

    def _known(self, db: sqlite3.Connection, existing: dict[str, Any],
               alert: Alert) -> IntakeEvent:
        incident_id = int(existing["id"])
        if alert.status is AlertStatus.RESOLVED:
            self.store.touch_incident(db, incident_id, "resolved")
            if existing["status"] != "resolved":
                log.info("incident %s resolved", incident_id, extra={"incident_id": incident_id})
                return IntakeEvent(incident_id, "resolved")
        else:
            self.store.touch_incident(db, incident_id, existing["status"])
        self.metrics.duplicates.inc()
        return IntakeEvent(incident_id, "duplicate")

    def _new(self, db: sqlite3.Connection, alert: Alert) -> IntakeEvent:
        if alert.status is AlertStatus.FIRING:
            previous = self.store.reopenable(db, alert.fingerprint)
            if previous is not None:  # regressed inside its stability window
                return self._reopen(db, previous, alert)
        data = alert.to_dict()
        target = match_target(self.config.targets, alert.labels)
        playbook = select_playbook(self.playbooks, alert)
        note = self._why_not(db, alert, target, playbook)
        incident_id = self.store.insert_incident(db, data, alert.incident_key,
                                                 target.name if target else None, note)
        if note is not None or target is None or playbook is None:
            log.info("incident %s recorded, not acted on: %s", incident_id, note,
                     extra={"incident_id": incident_id})
            return IntakeEvent(incident_id, "unmatched")
        return IntakeEvent(incident_id, "new", self._execute(db, incident_id, data, target.name,
                                                              playbook))

    def _reopen(self, db: sqlite3.Connection, previous: dict[str, Any],
                alert: Alert) -> IntakeEvent:
        incident_id = int(previous["id"])
        self.store.reopen(db, incident_id, alert.incident_key)
        log.warning("incident %s regressed inside its stability window: reopened", incident_id,
                    extra={"incident_id": incident_id})
        target = self.config.target(str(previous["target"])) if previous["target"] else None
        playbook = select_playbook(self.playbooks, alert)
        why = self._why_not(db, alert, target, playbook)
        # As for a new incident, the note says why it is not acted on: escalation reads the
        # budget_exhausted fact from it, and a reopening is where a flapping alert spends it.
        db.execute("UPDATE incidents SET note = ? WHERE id = ?", (why, incident_id))
        if target is None or playbook is None or why:
            return IntakeEvent(incident_id, "reopened")
        return IntakeEvent(incident_id, "reopened",
                           self._execute(db, incident_id, alert.to_dict(), target.name,
                                         playbook))

    def _execute(self, db: sqlite3.Connection, incident_id: int, data: dict[str, Any],
                 target: str, playbook: Playbook) -> int:
        execution_id = self.store.insert_execution(db, incident_id, playbook.name, target,
                                                   data, dry_run=False)
        log.info("incident %s (%s) -> execution %s of %s on %s", incident_id,
                 data["labels"].get("alertname"), execution_id, playbook.name, target,
                 extra={"incident_id": incident_id, "execution_id": execution_id,
                        "playbook": playbook.name, "target": target})
        return execution_id

    def _why_not(self, db: sqlite3.Connection, alert: Alert, target: Target | None,
                 playbook: Playbook | None) -> str | None:
        if alert.status is AlertStatus.RESOLVED:
            return "first seen resolved: nothing to do"
        if target is None:
            return "no declared target matches the alert's labels; not acted on"
        if playbook is None:
            return f"no playbook matches alertname {alert.labels.get('alertname')!r}"
        if self._runs_last_hour(db, target.name) >= self.config.max_runs_per_hour:
            return (f"budget exhausted: {self.config.max_runs_per_hour} runs per hour on "
                    f"{target.name}; escalating instead of acting")
        own = playbook.limits.max_runs_per_hour
        if own is not None and self._runs_last_hour(db, target.name, playbook.name) >= own:
            return (f"budget exhausted: playbook {playbook.name} allows {own} runs per hour "
                    f"on {target.name} (its limits.max_runs_per_hour); escalating instead "
                    "of acting")
        return None

    @staticmethod
    def _runs_last_hour(db: sqlite3.Connection, target: str, playbook: str | None = None
                        ) -> int:
        """Real runs started by alerts on ``target`` in the last hour (of ``playbook``)."""
        sql = ("SELECT COUNT(*) FROM executions WHERE target = ? AND dry_run = 0 "
               "AND replay_of IS NULL AND created_at >= ?")
        params: tuple[str, ...] = (target, ago(timedelta(hours=1)))
        if playbook is not None:
            sql, params = sql + " AND playbook = ?", (*params, playbook)
        return int(db.execute(sql, params).fetchone()[0])
