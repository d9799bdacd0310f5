"""From stored webhook payloads to incidents and pending executions, exactly once.

One inbox row is processed in one transaction: its incidents, their executions and the
row's `processed_at` commit together, so a crash replays the row without doubling anything.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from remediator.core import defaults
from remediator.core.alerts import Alert, AlertStatus, parse_webhook
from remediator.core.clock import Clock, utc_now
from remediator.core.config import RemediatorConfig
from remediator.core.playbook import select_playbook
from remediator.core.playbook_model import Playbook
from remediator.core.targets import Target, match_target
from remediator.errors import PayloadError
from remediator.metrics import ServiceMetrics
from remediator.store import IntakeBatch, Store
from remediator.store.records import InboxItem, Incident, IncidentStatus

__all__ = ["Intake", "IntakeEvent"]

log = logging.getLogger("remediator.service.intake")


@dataclass(frozen=True)
class IntakeEvent:
    incident_id: int
    kind: str  # new | duplicate | resolved | unmatched
    execution_id: int | None = None


class Intake:
    def __init__(self, store: Store, config: RemediatorConfig, playbooks: Sequence[Playbook],
                 metrics: ServiceMetrics, clock: Clock = utc_now) -> None:
        self.store = store
        self.config = config
        self.playbooks = list(playbooks)
        self.metrics = metrics
        self.clock = clock

    def drain(self, limit: int = 256) -> list[IntakeEvent]:
        """Process stored payloads in short transactions (the webhook's writer shares the
        write lock); a payload that breaks its chunk alone is moved to the dead letters
        (kept, with the reason) so it cannot block the rest."""
        items = self.store.unprocessed_inbox(limit)
        events: list[IntakeEvent] = []
        for start in range(0, len(items), defaults.INTAKE_CHUNK_PAYLOADS):
            chunk = items[start:start + defaults.INTAKE_CHUNK_PAYLOADS]
            try:
                events += self.process(chunk)
            except Exception:
                log.exception("intake chunk failed; retrying its %d payloads one by one",
                              len(chunk))
                events += [e for item in chunk for e in self._process_alone(item)]
        self.metrics.inbox_depth.set(self.store.inbox_depth())
        return events

    def process(self, items: Sequence[InboxItem]) -> list[IntakeEvent]:
        """Turn these stored payloads into incidents and executions, in one store
        transaction (what drain does per chunk)."""
        # The alerts are parsed here, once: incidents and executions store them, and later
        # stages read them back as typed records.
        parsed = {item.id: self._alerts(item.id, item.body) for item in items}

        def handle(batch: IntakeBatch, item: InboxItem) -> list[IntakeEvent]:
            return [self._one(batch, alert) for alert in parsed[item.id]]

        return self.store.process_inbox(items, handle)

    def _process_alone(self, item: InboxItem) -> list[IntakeEvent]:
        try:
            return self.process([item])
        except Exception as exc:
            log.exception("inbox row %s cannot be processed; kept as a dead letter", item.id)
            self.store.dead_letter_inbox(item, f"intake failed: {exc}")
            return []

    @staticmethod
    def _alerts(inbox_id: int, body: bytes) -> list[Alert]:
        try:
            return parse_webhook(body).alerts
        except PayloadError as exc:  # validated at intake; only a schema change gets here
            log.error("inbox row %s no longer parses: %s", inbox_id, exc)
            return []

    def _one(self, batch: IntakeBatch, alert: Alert) -> IntakeEvent:
        self.metrics.alerts_received.labels(status=alert.status.value).inc()
        existing = batch.incident_by_key(alert.incident_key)
        if existing is not None:
            return self._known(batch, existing, alert)
        return self._new(batch, alert)

    def _known(self, batch: IntakeBatch, existing: Incident, alert: Alert) -> IntakeEvent:
        incident_id = existing.id
        if alert.status is AlertStatus.RESOLVED:
            batch.touch_incident(incident_id, IncidentStatus.RESOLVED)
            if existing.status is not IncidentStatus.RESOLVED:
                log.info("incident %s resolved", incident_id, extra={"incident_id": incident_id})
                return IntakeEvent(incident_id, "resolved")
        else:
            batch.touch_incident(incident_id, existing.status)
        self.metrics.duplicates.inc()
        return IntakeEvent(incident_id, "duplicate")

    def _new(self, batch: IntakeBatch, alert: Alert) -> IntakeEvent:
        if alert.status is AlertStatus.FIRING:
            previous = batch.reopenable(alert.fingerprint)
            if previous is not None:  # regressed inside its stability window
                return self._reopen(batch, previous, alert)
        target = match_target(self.config.targets, alert.labels)
        playbook = select_playbook(self.playbooks, alert)
        note = self._why_not(batch, alert, target, playbook)
        incident_id = batch.add_incident(alert, target.name if target else None, note)
        if note is not None or target is None or playbook is None:
            log.info("incident %s recorded, not acted on: %s", incident_id, note,
                     extra={"incident_id": incident_id})
            return IntakeEvent(incident_id, "unmatched")
        return IntakeEvent(incident_id, "new", self._execute(batch, incident_id, alert,
                                                              target.name, playbook))

    def _reopen(self, batch: IntakeBatch, previous: Incident, alert: Alert) -> IntakeEvent:
        incident_id = previous.id
        target = self.config.target(previous.target) if previous.target else None
        playbook = select_playbook(self.playbooks, alert)
        why = self._why_not(batch, alert, target, playbook)
        # As for a new incident, the note says why it is not acted on: escalation reads the
        # budget_exhausted fact from it, and a reopening is where a flapping alert spends it.
        batch.reopen(incident_id, alert.incident_key, why)
        log.warning("incident %s regressed inside its stability window: reopened", incident_id,
                    extra={"incident_id": incident_id})
        if target is None or playbook is None or why:
            return IntakeEvent(incident_id, "reopened")
        return IntakeEvent(incident_id, "reopened",
                           self._execute(batch, incident_id, alert, target.name, playbook))

    def _execute(self, batch: IntakeBatch, incident_id: int, alert: Alert, target: str,
                 playbook: Playbook) -> int:
        execution_id = batch.add_execution(incident_id, playbook.name, target, alert)
        log.info("incident %s (%s) -> execution %s of %s on %s", incident_id,
                 alert.labels.get("alertname"), execution_id, playbook.name, target,
                 extra={"incident_id": incident_id, "execution_id": execution_id,
                        "playbook": playbook.name, "target": target})
        return execution_id

    def _why_not(self, batch: IntakeBatch, alert: Alert, target: Target | None,
                 playbook: Playbook | None) -> str | None:
        if alert.status is AlertStatus.RESOLVED:
            return "first seen resolved: nothing to do"
        if target is None:
            return "no declared target matches the alert's labels; not acted on"
        if playbook is None:
            return f"no playbook matches alertname {alert.labels.get('alertname')!r}"
        hour_ago = self.clock() - timedelta(hours=1)
        if batch.runs_since(target.name, hour_ago) >= self.config.max_runs_per_hour:
            return (f"budget exhausted: {self.config.max_runs_per_hour} runs per hour on "
                    f"{target.name}; escalating instead of acting")
        own = playbook.limits.max_runs_per_hour
        if own is not None and batch.runs_since(target.name, hour_ago, playbook.name) >= own:
            return (f"budget exhausted: playbook {playbook.name} allows {own} runs per hour "
                    f"on {target.name} (its limits.max_runs_per_hour); escalating instead "
                    "of acting")
        return None
