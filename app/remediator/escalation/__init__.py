"""Escalation in the running service: the notification outbox, its dispatcher, the policy
driver (executions, timer, resolve notices) and claims.

    escalation = EscalationService(store, load_service_policy(config), metrics)
    worker.on_finished = escalation.execution_finished   # rows only, in the execution thread
    escalation.start()  # the dispatcher and the timer threads; stop() waits for sends
"""

from remediator.escalation.claim import ClaimRefused, ClaimResult, claim_incident
from remediator.escalation.coordinator import CHAT_CHANNEL_TYPES, EscalationService
from remediator.escalation.dispatcher import Dispatcher
from remediator.escalation.outbox import Draft, Outbox
from remediator.escalation.wiring import load_service_policy

__all__ = [
    "CHAT_CHANNEL_TYPES",
    "ClaimRefused",
    "ClaimResult",
    "Dispatcher",
    "Draft",
    "EscalationService",
    "Outbox",
    "claim_incident",
    "load_service_policy",
]
