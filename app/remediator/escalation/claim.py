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

from remediator.errors import RemediatorError
from remediator.store import Store

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
    claim = store.claim_incident(incident_id, who, now)
    if claim is None:
        raise ClaimRefused(f"no incident {incident_id}", "unknown")
    if claim.claimed_by != who:
        raise ClaimRefused(f"incident {incident_id} is already claimed by "
                           f"{claim.claimed_by} (since {claim.claimed_at})", "taken")
    if not claim.new:
        return ClaimResult(incident_id, who, claim.claimed_at, already=True)
    return ClaimResult(incident_id, who, claim.claimed_at, cancelled=list(claim.cancelled))
