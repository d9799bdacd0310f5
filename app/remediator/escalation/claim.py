"""A human takes over an incident: Remediator stops acting and stops escalating it.

Claiming records who and when (incidents.claimed_by/claimed_at) and cancels the
incident's pending executions in the same transaction. A running execution notices the
claim through the worker's stop check and skips its remaining fix steps; the escalation
timer skips claimed incidents. Notifications already in the outbox still go out: they
were accepted, and the outbox never drops what it accepted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from remediator.adapters.store import Store
from remediator.errors import RemediatorError
from remediator.escalation.outbox import iso

__all__ = ["ClaimRefused", "ClaimResult", "claim_incident"]


class ClaimRefused(RemediatorError):
    """The incident does not exist (``unknown``) or someone else holds it (``taken``)."""

    def __init__(self, message: str, why: Literal["unknown", "taken"]) -> None:
        super().__init__(message)
        self.why = why


@dataclass(frozen=True)
class ClaimResult:
    incident_id: int
    claimed_by: str
    claimed_at: str
    already: bool = False  # the same person had claimed it before
    cancelled: list[int] = field(default_factory=list)  # pending executions cancelled

    def to_dict(self) -> dict[str, Any]:
        return {"incident_id": self.incident_id, "claimed_by": self.claimed_by,
                "claimed_at": self.claimed_at, "already_claimed": self.already,
                "cancelled_executions": self.cancelled}


def claim_incident(store: Store, incident_id: int, by: str, now: datetime) -> ClaimResult:
    """Record ``by`` as the owner of the incident; idempotent for the same person."""
    who = by.strip()
    if not who:
        raise ValueError("say who claims the incident (a name)")
    with store.transaction() as db:
        row = db.execute("SELECT claimed_by, claimed_at FROM incidents WHERE id = ?",
                         (incident_id,)).fetchone()
        if row is None:
            raise ClaimRefused(f"no incident {incident_id}", "unknown")
        if row["claimed_by"] not in (None, who):
            raise ClaimRefused(f"incident {incident_id} is already claimed by "
                               f"{row['claimed_by']} (since {row['claimed_at']})", "taken")
        if row["claimed_by"] == who:
            return ClaimResult(incident_id, who, row["claimed_at"], already=True)
        stamp = iso(now)
        db.execute("UPDATE incidents SET claimed_by = ?, claimed_at = ?, updated_at = ? "
                   "WHERE id = ?", (who, stamp, stamp, incident_id))
        pending = [int(r["id"]) for r in db.execute(
            "SELECT id FROM executions WHERE incident_id = ? AND state = 'pending'",
            (incident_id,)).fetchall()]
        db.executemany(
            "UPDATE executions SET state = 'cancelled', outcome = 'aborted', error = ?, "
            "finished_at = ? WHERE id = ? AND state = 'pending'",
            [(f"cancelled: incident claimed by {who}", stamp, ex) for ex in pending])
    return ClaimResult(incident_id, who, stamp, cancelled=pending)
