"""The notification outbox: every notification is a row before anything is sent.

Two tables (store migration 2):

``notifications``  one row per (``dedup_key``, ``kind``): a trigger, its resolve notice,
                   an update (a later, different criterion for a trigger's key: its own
                   key is the trigger's plus ``#rule``), or an info notice. The store
                   accepts that pair once (``enqueue_notification``): that is the dedup —
                   a rule that keeps matching, or a playbook asking for the same team and
                   level, adds nothing. The rendered
                   message is stored with it, so a restart sends exactly what was decided.
``deliveries``     one row per notification and channel: its own status, attempts, next
                   attempt time and last error. A channel that is down only delays its own
                   rows.

A notification's status follows its deliveries: ``pending`` while any is in flight or
waiting for a retry, then ``delivered`` (someone was told), ``failed`` (nobody was; the
reason says why, channel by channel) or ``skipped`` (a resolve notice whose trigger never
reached any channel). Nothing accepted here is dropped without one of those.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from remediator.adapters.notifiers import AttemptOutcome, Message
from remediator.core.redact import redact
from remediator.store import Store, iso, parse_iso
from remediator.store.records import (
    DeliveryStatus,
    DueDeliveryRecord,
    NewNotification,
    Notification,
    NotificationKind,
)

__all__ = [
    "ACTIVE",
    "Draft",
    "DueDelivery",
    "Gate",
    "Outbox",
    "iso",
    "parse_iso",
]

ACTIVE: Final = ("pending", "sending", "retry")
"""Delivery states that still owe an attempt (the outbox depth counts these)."""

_SETTLED_BAD: Final = ("failed", "not_configured", "skipped")
_RESOLVE_WAIT: Final = timedelta(seconds=1)  # re-check a resolve whose trigger is mid-send


Draft = NewNotification[Message]
"""A notification about to be accepted: what, to whom, through which channels; the store's
record (:class:`~remediator.store.records.NewNotification`) holding the rendered Message."""


DueDelivery = DueDeliveryRecord[Message]
"""One delivery whose attempt is due, with what is needed to make it: the store's record
(:class:`~remediator.store.records.DueDeliveryRecord`) holding the rendered Message."""


@dataclass(frozen=True)
class Gate:
    """Whether a resolve may go now: ``send``, ``wait`` until ``until``, or ``skip``;
    ``since``: when its trigger was delivered (its retries count from then, not from the
    time it spent waiting for the trigger)."""

    action: str
    until: datetime | None = None
    reason: str = ""
    since: datetime | None = None


class Outbox:
    """Rows in, rows out; all SQL of the outbox lives here (one store, one writer)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # -- accepting --------------------------------------------------------------------
    def enqueue(self, draft: Draft, now: datetime) -> int | None:
        """Accept ``draft``; None when its (dedup_key, kind) was accepted before."""
        return self.store.enqueue_notification(NewNotification(
            draft.incident_id, NotificationKind(draft.kind), draft.dedup_key, draft.team,
            draft.level, draft.severity, draft.rule, draft.reason,
            dataclasses.asdict(draft.message), tuple(draft.channels),
            trigger_id=draft.trigger_id, criteria=tuple(draft.criteria)), now)

    def exists(self, dedup_key: str, kind: str) -> bool:
        return self.store.notification_exists(dedup_key, kind)

    def trigger(self, dedup_key: str) -> tuple[int, set[str]] | None:
        """The trigger accepted for ``dedup_key``: its id and the criteria (rules) it and
        its updates told of; None when there is none yet."""
        return self.store.trigger_criteria(dedup_key)

    # -- delivering -------------------------------------------------------------------
    def recover_interrupted(self, now: datetime, owner: str | None = None) -> int:
        """Deliveries left ``sending`` are due again (at least once): those ``owner`` (a
        replica, restarted) claimed, or with None those whose claim expired (the leader
        does this for replicas that died)."""
        return self.store.recover_interrupted_deliveries(now, owner=owner)

    def claim_due(self, now: datetime, busy: Iterable[str] = (), *, owner: str = "",
                  until: datetime | None = None) -> list[DueDelivery]:
        """Mark ``sending`` (claimed by ``owner`` until ``until``: one replica sends it)
        and return the oldest due delivery of each idle channel."""
        return [DueDelivery(r.id, r.notification_id, r.channel, r.channel_type, r.attempts,
                            r.team, r.kind, r.trigger_id, Message(**r.message), r.created_at)
                for r in self.store.claim_due_deliveries(now, busy, owner=owner, until=until)]

    def gate(self, due: DueDelivery, now: datetime) -> Gate:
        """A resolve goes only after its trigger was delivered on the same channel."""
        if due.kind != "resolve" or due.trigger_id is None:
            return Gate("send")
        trigger = self.store.delivery(due.trigger_id, due.channel)
        if trigger is None or trigger.status.value in _SETTLED_BAD:
            return Gate("skip", reason="the trigger was never delivered on this channel")
        if trigger.status is DeliveryStatus.DELIVERED:
            return Gate("send", since=parse_iso(trigger.updated_at or iso(now)))
        later = parse_iso(trigger.next_attempt_at) if trigger.next_attempt_at else now
        return Gate("wait", until=max(later, now + _RESOLVE_WAIT))

    def postpone(self, due: DueDelivery, until: datetime, now: datetime) -> None:
        self.store.postpone_delivery(due.id, until, now)

    def record(self, due: DueDelivery, outcome: AttemptOutcome, now: datetime) -> None:
        """Store one attempt's outcome and bring the notification's status up to date."""
        status = DeliveryStatus(outcome.status)
        delivered = status is DeliveryStatus.DELIVERED
        self.store.record_attempt(
            due.id, due.notification_id, status,
            tried=status not in (DeliveryStatus.NOT_CONFIGURED, DeliveryStatus.SKIPPED),
            now=now,
            next_attempt_at=(now + timedelta(seconds=outcome.retry_in or 0.0)
                             if status is DeliveryStatus.RETRY else None),
            error=None if delivered else redact(outcome.reason) or None,
            detail=redact(outcome.reason) if delivered else None)

    # -- reading ----------------------------------------------------------------------
    def next_attempt_at(self) -> datetime | None:
        return self.store.next_delivery_at()

    def depth(self) -> int:
        return self.store.outbox_depth()

    def triggers_to_resolve(self) -> list[Notification]:
        """Triggers of resolved incidents that reached (or may still reach) someone."""
        return self.store.triggers_to_resolve()

    def live_channels(self, notification_id: int) -> list[tuple[str, str]]:
        """Channels of a notification that delivered it or may still."""
        return self.store.live_channels(notification_id)

    def notifications(self, limit: int = 50) -> list[dict[str, Any]]:
        """Newest first, for the API: secrets masked, per-channel state included."""
        return [self._view(n) for n in self.store.notifications(limit)]

    @staticmethod
    def _view(n: Notification) -> dict[str, Any]:
        deliveries = [{"channel": d.channel, "channel_type": d.channel_type,
                       "status": d.status.value, "attempts": d.attempts,
                       "next_attempt_at": d.next_attempt_at,
                       "last_error": _masked(d.last_error), "detail": _masked(d.detail),
                       "delivered_at": d.delivered_at} for d in n.deliveries]
        return {
            "id": n.id, "incident_id": n.incident_id, "kind": n.kind.value,
            "team": n.team, "level": n.level, "severity": n.severity,
            "rule": n.rule, "reason": _masked(n.reason),
            "title": redact(str(n.message.get("title", ""))),
            "dedup_key": n.dedup_key, "status": n.status.value,
            "status_reason": _masked(n.status_reason), "trigger_id": n.trigger_id,
            "created_at": n.created_at, "updated_at": n.updated_at,
            "channels": deliveries,
        }


def _masked(text: str | None) -> str | None:
    return redact(text) if text else text
