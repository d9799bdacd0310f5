"""The playbook model: frozen dataclasses a checked playbook is loaded into.

`_playbook_schema` checks YAML into these; `playbook` holds the loaders and the choice of
playbook for an alert; `runner.run_playbook` runs them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from remediator.core import defaults
from remediator.core.actions import ACTIONS, ActionSpec, mutates

__all__ = [
    "PHASE_ORDER",
    "EscalationSpec",
    "Limits",
    "OnFailure",
    "Phase",
    "Playbook",
    "Step",
]


class Phase(StrEnum):
    """The runbook section a step belongs to; steps run in this order."""

    DIAGNOSE = "diagnose"
    FIX = "fix"
    VALIDATE = "validate"


PHASE_ORDER = {Phase.DIAGNOSE: 0, Phase.FIX: 1, Phase.VALIDATE: 2}


class OnFailure(StrEnum):
    """What a failed (or timed-out) step does to the run."""

    ABORT = "abort"        # stop here; outcome failed
    CONTINUE = "continue"  # carry on; later steps can test steps.<id>.status
    ESCALATE = "escalate"  # record an escalation request and stop; outcome escalated


@dataclass(frozen=True)
class EscalationSpec:
    """Who to ask when escalating. Fields are templates, rendered when it happens."""

    team: str = defaults.DEFAULT_ESCALATION_TEAM
    level: str = defaults.DEFAULT_ESCALATION_LEVEL
    reason: str | None = None


@dataclass(frozen=True)
class Limits:
    """Playbook-wide limits. max_runs_per_hour None means the config's budget."""

    timeout_s: float = defaults.DEFAULT_PLAYBOOK_TIMEOUT_S
    max_runs_per_hour: int | None = None


@dataclass(frozen=True)
class Step:
    """One step, as written (arguments are still templates)."""

    id: str
    action: str
    phase: Phase
    args: dict[str, Any] = field(default_factory=dict)
    when: str | None = None
    retries: int = 0
    delay_s: float = defaults.DEFAULT_RETRY_DELAY_S
    timeout_s: float = defaults.DEFAULT_STEP_TIMEOUT_S
    on_failure: OnFailure = OnFailure.ABORT
    escalate: EscalationSpec | None = None
    idempotent: bool = False
    read_only: bool = False
    description: str = ""
    line: int = 0

    @property
    def spec(self) -> ActionSpec:
        """The catalogue entry of the step's action."""
        return ACTIONS[self.action]

    @property
    def mutating(self) -> bool:
        """True if running the step may change the target (so: skipped in a dry run)."""
        return mutates(self.spec, self.args, self.read_only)


@dataclass(frozen=True)
class Playbook:
    """A validated playbook."""

    name: str
    match: dict[str, str]
    steps: tuple[Step, ...]
    target: str | None = None
    limits: Limits = field(default_factory=Limits)
    escalation: EscalationSpec = field(default_factory=EscalationSpec)
    params: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    file: str | None = None

    def step(self, step_id: str) -> Step | None:
        """The step with this id, if any."""
        return next((step for step in self.steps if step.id == step_id), None)

    def matches(self, labels: Mapping[str, str]) -> bool:
        """True when every `match` label equals the alert's."""
        return all(labels.get(name) == value for name, value in self.match.items())
