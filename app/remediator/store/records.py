"""What the store holds, as typed records: the only shapes that cross the store's API.

Ids are ints. Timestamps in records are the store's ISO-8601 UTC text (``...T12:00:00.000000Z``,
see :func:`remediator.core.clock.iso`): it sorts as it compares, and every backend stores and
returns it the same way. Operations take moments as aware datetimes. An alert is carried
parsed (:class:`Alert`).

Each record also answers ``record["field"]`` / ``record.get("field")`` with its API view
(:meth:`view`, the JSON the web API and reports show), so templates, reports and the API
read one shape whatever the backend.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Generic, TypeVar

from remediator.core.alerts import Alert
from remediator.core.clock import iso, parse_iso
from remediator.core.results import ExecutionState, StepStatus

__all__ = [
    "MAX_ROW_ID",
    "ClaimRecord",
    "DeadLetter",
    "Delivery",
    "DeliveryStatus",
    "DueDeliveryRecord",
    "Execution",
    "ExecutionState",
    "InboxItem",
    "InboxState",
    "Incident",
    "IncidentStatus",
    "LastKnownGood",
    "NewNotification",
    "Notification",
    "NotificationKind",
    "NotificationStatus",
    "StepRecord",
    "StepStatus",
    "iso",
    "parse_iso",
]

_M = TypeVar("_M")

MAX_ROW_ID = 2**63 - 1
"""Largest id a store holds (a signed 64-bit integer, in SQLite and PostgreSQL alike)."""


class InboxState(StrEnum):
    """A stored webhook payload: waiting for intake, or processed (its incidents exist)."""

    PENDING = "pending"
    PROCESSED = "processed"


class IncidentStatus(StrEnum):
    FIRING = "firing"
    RESOLVED = "resolved"


class NotificationKind(StrEnum):
    TRIGGER = "trigger"
    RESOLVE = "resolve"
    UPDATE = "update"
    INFO = "info"


class NotificationStatus(StrEnum):
    """Follows the notification's deliveries (see escalation.outbox)."""

    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"
    SKIPPED = "skipped"


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    RETRY = "retry"
    DELIVERED = "delivered"
    FAILED = "failed"
    NOT_CONFIGURED = "not_configured"
    SKIPPED = "skipped"

    @property
    def active(self) -> bool:
        """Still owes an attempt (the outbox depth counts these)."""
        return self in (DeliveryStatus.PENDING, DeliveryStatus.SENDING, DeliveryStatus.RETRY)


class _Viewed:
    """``record[key]`` and ``record.get(key)`` read the record's API view."""

    def view(self) -> dict[str, Any]:
        raise NotImplementedError

    def __getitem__(self, key: str) -> Any:
        return self.view()[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.view().get(key, default)

    def keys(self) -> Any:
        return self.view().keys()


@dataclass(frozen=True, eq=True)
class InboxItem:
    id: int
    body: bytes
    received_at: str
    state: InboxState = InboxState.PENDING


@dataclass(frozen=True)
class DeadLetter(_Viewed):
    id: int
    received_at: str
    reason: str
    content_type: str | None
    body: bytes

    def view(self) -> dict[str, Any]:
        return {"id": self.id, "received_at": self.received_at, "reason": self.reason,
                "content_type": self.content_type,
                "body": self.body.decode("utf-8", "replace")[:4096]}


@dataclass(frozen=True)
class Incident(_Viewed):
    """One firing episode of one alert (its key: fingerprint + start)."""

    id: int
    incident_key: str
    fingerprint: str
    alertname: str
    starts_at: str  # as Alertmanager sent it
    status: IncidentStatus
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    generator_url: str
    target: str | None
    note: str | None
    notices: int
    created_at: str
    updated_at: str
    resolved_at: str | None = None
    claimed_by: str | None = None
    claimed_at: str | None = None
    fixed_at: str | None = None
    closed_at: str | None = None
    reopened: int = 0

    @property
    def mark(self) -> tuple[Any, ...]:
        """What can change after insert: a cached record is stale when this differs."""
        return (self.status.value, self.updated_at, self.note, self.notices, self.claimed_by,
                self.fixed_at, self.reopened, self.target)

    def view(self) -> dict[str, Any]:
        return {
            "id": self.id, "fingerprint": self.fingerprint, "startsAt": self.starts_at,
            "status": self.status.value, "labels": dict(self.labels),
            "annotations": dict(self.annotations), "target": self.target,
            "alertname": self.alertname, "note": self.note, "notices": self.notices,
            "generatorURL": self.generator_url, "created_at": self.created_at,
            "updated_at": self.updated_at, "resolved_at": self.resolved_at,
            "claimed_by": self.claimed_by, "claimed_at": self.claimed_at,
            "fixed_at": self.fixed_at, "closed_at": self.closed_at, "reopened": self.reopened,
        }


@dataclass(frozen=True)
class StepRecord(_Viewed):
    """One step of an execution as stored (written when it starts and when it ends)."""

    id: str
    action: str
    phase: str | None
    status: StepStatus
    attempts: int = 0
    started_at: str | None = None
    duration_s: float | None = None
    outputs: Mapping[str, Any] = field(default_factory=dict)
    rendered_args: Mapping[str, Any] = field(default_factory=dict)
    error: str | None = None
    note: str | None = None

    @classmethod
    def from_dict(cls, step: Mapping[str, Any]) -> StepRecord:
        """From a StepResult.to_dict() (the runner's shape)."""
        return cls(id=str(step["id"]), action=str(step["action"]), phase=step.get("phase"),
                   status=StepStatus(step["status"]), attempts=int(step.get("attempts", 0)),
                   started_at=step.get("started_at"), duration_s=step.get("duration_s"),
                   outputs=step.get("outputs") or {},
                   rendered_args=step.get("rendered_args") or {},
                   error=step.get("error"), note=step.get("note"))

    def view(self) -> dict[str, Any]:
        return {"id": self.id, "action": self.action, "phase": self.phase,
                "status": self.status.value, "attempts": self.attempts,
                "started_at": self.started_at, "duration_s": self.duration_s,
                "outputs": self.outputs, "rendered_args": self.rendered_args,
                "error": self.error, "note": self.note}


@dataclass(frozen=True)
class Execution(_Viewed):
    """One run of a playbook on a target for an incident (or a replay of one)."""

    id: int
    incident_id: int | None
    playbook: str
    target: str
    state: ExecutionState
    alert: Alert | None  # None only for a stored alert that no longer parses
    dry_run: bool
    created_at: str
    outcome: str | None = None
    scenario: str | None = None
    replay_of: int | None = None
    error: str | None = None
    escalations: tuple[Mapping[str, Any], ...] = ()
    started_at: str | None = None
    finished_at: str | None = None
    steps: tuple[StepRecord, ...] = ()

    def view(self) -> dict[str, Any]:
        return {
            "id": self.id, "incident_id": self.incident_id, "playbook": self.playbook,
            "target": self.target, "state": self.state.value, "outcome": self.outcome,
            "scenario": self.scenario, "dry_run": self.dry_run, "replay_of": self.replay_of,
            "error": self.error, "escalations": [dict(e) for e in self.escalations],
            "created_at": self.created_at, "started_at": self.started_at,
            "finished_at": self.finished_at, "steps": [s.view() for s in self.steps],
        }


@dataclass(frozen=True)
class LastKnownGood:
    target: str
    image: str
    config: Mapping[str, Any]
    recorded_at: str

    def view(self) -> dict[str, Any]:
        return {"image": self.image, **self.config, "recorded_at": self.recorded_at}


@dataclass(frozen=True)
class ClaimRecord:
    """An incident's owner after a claim: ``new`` when this claim made them the owner
    (then ``cancelled`` lists the pending executions it cancelled)."""

    claimed_by: str
    claimed_at: str
    new: bool
    cancelled: tuple[int, ...] = ()


@dataclass(frozen=True)
class NewNotification(Generic[_M]):
    """A notification to accept into the outbox: what, to whom, through which channels.

    ``message`` is the rendered message: the escalation service drafts one with a
    ``Message`` (``escalation.outbox.Draft``), the store takes its JSON (a mapping) and
    sends it exactly as stored."""

    incident_id: int | None
    kind: NotificationKind | str  # trigger | resolve | update | info
    dedup_key: str
    team: str
    level: str
    severity: str
    rule: str | None
    reason: str
    message: _M
    channels: Sequence[tuple[str, str]]  # (name, type), in the team's order
    trigger_id: int | None = None  # for a resolve or an update: its trigger
    criteria: Sequence[str] = ()  # for a trigger: every rule it tells of


@dataclass(frozen=True)
class Delivery:
    """One notification on one channel."""

    channel: str
    channel_type: str
    status: DeliveryStatus
    attempts: int = 0
    next_attempt_at: str | None = None
    last_error: str | None = None
    detail: str | None = None
    delivered_at: str | None = None
    updated_at: str | None = None


@dataclass(frozen=True)
class Notification:
    id: int
    incident_id: int | None
    kind: NotificationKind
    dedup_key: str
    team: str
    level: str
    severity: str
    rule: str | None
    reason: str | None
    message: Mapping[str, Any]
    status: NotificationStatus
    status_reason: str | None
    trigger_id: int | None
    created_at: str
    updated_at: str
    criteria: tuple[str, ...] | None = None
    deliveries: tuple[Delivery, ...] = ()


@dataclass(frozen=True)
class DueDeliveryRecord(Generic[_M]):
    """A delivery the outbox marked ``sending``, with its notification's fields: the store
    gives ``message`` as JSON (a mapping), the outbox as a ``Message``
    (``escalation.outbox.DueDelivery``)."""

    id: int
    notification_id: int
    channel: str
    channel_type: str
    attempts: int
    team: str
    kind: NotificationKind
    trigger_id: int | None
    message: _M
    created_at: str

    @property
    def accepted_at(self) -> datetime:
        """The notification's acceptance: retries stop by its age (core.backoff)."""
        return parse_iso(self.created_at)
