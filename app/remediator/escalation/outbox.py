"""The notification outbox: every notification is a row before anything is sent.

Two tables (store migration 2):

``notifications``  one row per (``dedup_key``, ``kind``): a trigger, its resolve notice,
                   an update (a later, different criterion for a trigger's key: its own
                   key is the trigger's plus ``#rule``), or an info notice. ``INSERT OR
                   IGNORE`` on that pair is the dedup — a rule that keeps matching, or a
                   playbook asking for the same team and level, adds nothing. The rendered
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
import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from remediator.adapters.notifiers import AttemptOutcome, Message
from remediator.adapters.store import Store
from remediator.core.redact import redact

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


def iso(moment: datetime) -> str:
    """The store's timestamp format (``...T12:00:00.000000Z``): sorts as text."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    text = aware.astimezone(UTC).isoformat(timespec="microseconds")
    return text.replace("+00:00", "Z")


def parse_iso(text: str) -> datetime:
    """Inverse of :func:`iso`; also reads Alertmanager's ``...Z`` and offsets."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Draft:
    """A notification about to be accepted: what, to whom, through which channels."""

    incident_id: int | None
    kind: str  # trigger | resolve | info
    dedup_key: str
    team: str
    level: str
    severity: str
    rule: str | None
    reason: str
    message: Message
    channels: Sequence[tuple[str, str]]  # (name, type), in the team's order
    trigger_id: int | None = None  # for a resolve or an update: its trigger
    criteria: Sequence[str] = ()  # for a trigger: every rule it tells of


@dataclass(frozen=True)
class DueDelivery:
    """One delivery whose attempt is due, with what is needed to make it."""

    id: int
    notification_id: int
    channel: str
    channel_type: str
    attempts: int
    team: str
    kind: str
    trigger_id: int | None
    message: Message
    accepted_at: datetime  # the notification's; retries stop by its age (core.backoff)


@dataclass(frozen=True)
class Gate:
    """Whether a resolve may go now: ``send``, ``wait`` until ``until``, or ``skip``;
    ``since``: when its trigger was delivered (its retries count from then, not from the
    time it spent waiting for the trigger)."""

    action: str
    until: datetime | None = None
    reason: str = ""
    since: datetime | None = None


def _message_json(message: Message) -> str:
    return json.dumps(dataclasses.asdict(message), sort_keys=True, default=str)


def _message_from(text: str) -> Message:
    return Message(**json.loads(text))


class Outbox:
    """Rows in, rows out; all SQL of the outbox lives here (one store, one writer)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # -- accepting --------------------------------------------------------------------
    def enqueue(self, draft: Draft, now: datetime) -> int | None:
        """Accept ``draft``; None when its (dedup_key, kind) was accepted before."""
        with self.store.transaction() as db:
            notification_id = self._insert(db, draft, iso(now))
            if notification_id is None:
                return None
            for name, kind in draft.channels:
                db.execute(
                    "INSERT INTO deliveries(notification_id, channel, channel_type, status, "
                    "next_attempt_at, updated_at) VALUES (?,?,?,?,?,?)",
                    (notification_id, name, kind, "pending", iso(now), iso(now)))
            if not draft.channels:
                reason = f"no channel of team {draft.team} takes {draft.level} notifications"
                db.execute("UPDATE notifications SET status = 'failed', status_reason = ? "
                           "WHERE id = ?", (reason, notification_id))
        return notification_id

    def _insert(self, db: sqlite3.Connection, draft: Draft, now: str) -> int | None:
        cur = db.execute(
            "INSERT OR IGNORE INTO notifications(incident_id, kind, dedup_key, team, level, "
            "severity, rule, reason, message, status, trigger_id, criteria, created_at, "
            "updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (draft.incident_id, draft.kind, draft.dedup_key, draft.team, draft.level,
             draft.severity, draft.rule, draft.reason, _message_json(draft.message),
             "pending", draft.trigger_id, json.dumps(list(draft.criteria)) if draft.criteria
             else None, now, now))
        return int(cur.lastrowid) if cur.rowcount and cur.lastrowid else None

    def exists(self, dedup_key: str, kind: str) -> bool:
        return bool(self.store.query(
            "SELECT 1 FROM notifications WHERE dedup_key = ? AND kind = ?", (dedup_key, kind)))

    def trigger(self, dedup_key: str) -> tuple[int, set[str]] | None:
        """The trigger accepted for ``dedup_key``: its id and the criteria (rules) it and
        its updates told of; None when there is none yet."""
        rows = self.store.query("SELECT id, rule, criteria FROM notifications "
                                "WHERE dedup_key = ? AND kind = 'trigger'", (dedup_key,))
        if not rows:
            return None
        row = rows[0]
        told = set(json.loads(row["criteria"])) if row["criteria"] else {row["rule"]}
        told.update(r["rule"] for r in self.store.query(
            "SELECT rule FROM notifications WHERE trigger_id = ? AND kind = 'update'",
            (row["id"],)))
        return int(row["id"]), told

    # -- delivering -------------------------------------------------------------------
    def recover_interrupted(self, now: datetime) -> int:
        """Deliveries a stopped process left ``sending`` are due again (at least once)."""
        with self.store.transaction() as db:
            cur = db.execute("UPDATE deliveries SET status = 'retry', next_attempt_at = ?, "
                             "last_error = COALESCE(last_error, 'interrupted by a restart') "
                             "WHERE status = 'sending'", (iso(now),))
            return int(cur.rowcount)

    def claim_due(self, now: datetime, busy: Iterable[str] = ()) -> list[DueDelivery]:
        """Mark ``sending`` and return the oldest due delivery of each idle channel."""
        skip = set(busy)
        with self.store.transaction() as db:
            # Only the head of each channel's queue is read (the writer lock is held here,
            # and an alert storm can leave thousands of rows due at once).
            rows = db.execute(
                "SELECT d.id, d.notification_id, d.channel, d.channel_type, d.attempts, "
                "n.team, n.kind, n.trigger_id, n.message, n.created_at FROM deliveries d "
                "JOIN notifications n ON n.id = d.notification_id WHERE d.id IN ("
                "SELECT MIN(id) FROM deliveries WHERE status IN ('pending', 'retry') AND "
                "next_attempt_at <= ? GROUP BY channel) ORDER BY d.id", (iso(now),)).fetchall()
            chosen = [row for row in rows if row["channel"] not in skip]  # one at a time
            db.executemany("UPDATE deliveries SET status = 'sending', updated_at = ? "
                           "WHERE id = ?", [(iso(now), row["id"]) for row in chosen])
        return [DueDelivery(r["id"], r["notification_id"], r["channel"], r["channel_type"],
                            r["attempts"], r["team"], r["kind"], r["trigger_id"],
                            _message_from(r["message"]), parse_iso(r["created_at"]))
                for r in chosen]

    def gate(self, due: DueDelivery, now: datetime) -> Gate:
        """A resolve goes only after its trigger was delivered on the same channel."""
        if due.kind != "resolve" or due.trigger_id is None:
            return Gate("send")
        rows = self.store.query("SELECT status, next_attempt_at, updated_at FROM deliveries "
                                "WHERE notification_id = ? AND channel = ?",
                                (due.trigger_id, due.channel))
        if not rows or rows[0]["status"] in _SETTLED_BAD:
            return Gate("skip", reason="the trigger was never delivered on this channel")
        if rows[0]["status"] == "delivered":
            return Gate("send", since=parse_iso(rows[0]["updated_at"]))
        later = parse_iso(rows[0]["next_attempt_at"]) if rows[0]["next_attempt_at"] else now
        return Gate("wait", until=max(later, now + _RESOLVE_WAIT))

    def postpone(self, due: DueDelivery, until: datetime, now: datetime) -> None:
        with self.store.transaction() as db:
            db.execute("UPDATE deliveries SET status = 'pending', next_attempt_at = ?, "
                       "updated_at = ? WHERE id = ?", (iso(until), iso(now), due.id))

    def record(self, due: DueDelivery, outcome: AttemptOutcome, now: datetime) -> None:
        """Store one attempt's outcome and bring the notification's status up to date."""
        tried = outcome.status not in ("not_configured", "skipped")
        status = outcome.status
        next_at = None
        if status == "retry":
            next_at = iso(now + timedelta(seconds=outcome.retry_in or 0.0))
        delivered_at = iso(now) if status == "delivered" else None
        error = None if status == "delivered" else redact(outcome.reason) or None
        detail = redact(outcome.reason) if status == "delivered" else None
        with self.store.transaction() as db:
            db.execute(
                "UPDATE deliveries SET status = ?, attempts = attempts + ?, next_attempt_at = ?, "
                "last_error = COALESCE(?, last_error), detail = ?, delivered_at = ?, "
                "updated_at = ? WHERE id = ?",
                (status, int(tried), next_at, error, detail, delivered_at, iso(now), due.id))
            self._settle(db, due.notification_id, iso(now))

    def _settle(self, db: sqlite3.Connection, notification_id: int, now: str) -> None:
        rows = db.execute("SELECT channel, status, last_error FROM deliveries "
                          "WHERE notification_id = ? ORDER BY id", (notification_id,)).fetchall()
        states = [row["status"] for row in rows]
        problems = "; ".join(f"{r['channel']}: {r['status'].replace('_', ' ')}"
                             f"{' (' + r['last_error'] + ')' if r['last_error'] else ''}"
                             for r in rows if r["status"] in _SETTLED_BAD)
        if any(state in ACTIVE for state in states):
            status = "pending"
        elif "delivered" in states:
            status = "delivered"
        elif states and all(state == "skipped" for state in states):
            status = "skipped"
        else:
            status = "failed"
        db.execute("UPDATE notifications SET status = ?, status_reason = ?, updated_at = ? "
                   "WHERE id = ?", (status, problems or None, now, notification_id))

    # -- reading ----------------------------------------------------------------------
    def next_attempt_at(self) -> datetime | None:
        rows = self.store.query("SELECT MIN(next_attempt_at) AS due FROM deliveries "
                                "WHERE status IN ('pending', 'retry')")
        due = rows[0]["due"] if rows else None
        return parse_iso(due) if due else None

    def depth(self) -> int:
        rows = self.store.query("SELECT COUNT(*) AS n FROM deliveries "
                                "WHERE status IN ('pending', 'sending', 'retry')")
        return int(rows[0]["n"])

    def triggers_to_resolve(self) -> list[dict[str, Any]]:
        """Triggers of resolved incidents that reached (or may still reach) someone."""
        return self.store.query(
            "SELECT n.* FROM notifications n JOIN incidents i ON i.id = n.incident_id "
            "WHERE i.status = 'resolved' AND n.kind = 'trigger' "
            "AND n.status IN ('pending', 'delivered') AND NOT EXISTS (SELECT 1 FROM "
            "notifications r WHERE r.kind = 'resolve' AND r.dedup_key = n.dedup_key) "
            "ORDER BY n.id")

    def live_channels(self, notification_id: int) -> list[tuple[str, str]]:
        """Channels of a notification that delivered it or may still."""
        rows = self.store.query(
            "SELECT channel, channel_type FROM deliveries WHERE notification_id = ? AND "
            "status IN ('pending', 'sending', 'retry', 'delivered') ORDER BY id",
            (notification_id,))
        return [(row["channel"], row["channel_type"]) for row in rows]

    def notifications(self, limit: int = 50) -> list[dict[str, Any]]:
        """Newest first, for the API: secrets masked, per-channel state included."""
        rows = self.store.query("SELECT * FROM notifications ORDER BY id DESC LIMIT ?",
                                (limit,))
        return [self._view(row) for row in rows]

    def _view(self, row: dict[str, Any]) -> dict[str, Any]:
        deliveries = self.store.query(
            "SELECT channel, channel_type, status, attempts, next_attempt_at, last_error, "
            "detail, delivered_at FROM deliveries WHERE notification_id = ? ORDER BY id",
            (row["id"],))
        for delivery in deliveries:
            delivery["last_error"] = _masked(delivery["last_error"])
            delivery["detail"] = _masked(delivery["detail"])
        title = json.loads(row["message"]).get("title", "")
        return {
            "id": row["id"], "incident_id": row["incident_id"], "kind": row["kind"],
            "team": row["team"], "level": row["level"], "severity": row["severity"],
            "rule": row["rule"], "reason": _masked(row["reason"]), "title": redact(title),
            "dedup_key": row["dedup_key"], "status": row["status"],
            "status_reason": _masked(row["status_reason"]), "trigger_id": row["trigger_id"],
            "created_at": row["created_at"], "updated_at": row["updated_at"],
            "channels": deliveries,
        }


def _masked(text: str | None) -> str | None:
    return redact(text) if text else text
