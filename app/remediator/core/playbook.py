"""The playbook model, its loaders, and the choice of playbook for an alert.

A playbook is data: YAML checked by `_playbook_schema` (see docs there and in the README),
loaded into the frozen dataclasses below, and run by `runner.run_playbook`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from remediator.core import defaults
from remediator.core.actions import ACTIONS, ActionSpec, mutates
from remediator.core.alerts import Alert
from remediator.core.problems import format_problems
from remediator.errors import PlaybookSchemaError

if TYPE_CHECKING:
    from remediator.core.targets import Target

__all__ = [
    "EscalationSpec",
    "Limits",
    "OnFailure",
    "Phase",
    "Playbook",
    "Step",
    "load_playbook",
    "load_playbook_text",
    "load_playbooks",
    "select_playbook",
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


def load_playbook(
    path: str | Path, targets: Sequence[Target] | None = None,
    teams: Collection[str] | None = None,
) -> Playbook:
    """Load and check one playbook file; PlaybookSchemaError lists file:line: field: problem.

    Literal target names are checked against `targets`, team names against `teams` (the
    escalation policy's), when given.
    """
    from remediator.core._playbook_schema import check_playbook_file  # it imports this module

    playbook, problems = check_playbook_file(Path(path), targets, teams)
    if problems or playbook is None:
        raise PlaybookSchemaError(f"invalid playbook:\n{format_problems(problems)}")
    return playbook


def load_playbook_text(
    text: str, file: str = "<playbook>", targets: Sequence[Target] | None = None,
) -> Playbook:
    """Like load_playbook, from YAML text (tests, the API's replay of stored playbooks)."""
    from remediator.core._playbook_schema import check_playbook_data
    from remediator.core._yaml import load_yaml_text

    data, problems = load_yaml_text(text, file)
    playbook = None
    if not problems:
        playbook, problems = check_playbook_data(data, file, targets)
    if problems or playbook is None:
        raise PlaybookSchemaError(f"invalid playbook:\n{format_problems(problems)}")
    return playbook


def load_playbooks(
    directory: str | Path, targets: Sequence[Target] | None = None,
    teams: Collection[str] | None = None,
) -> list[Playbook]:
    """Every *.yml / *.yaml playbook in a directory (sorted), checked together.

    One bad file fails the whole set: a half-loaded set of playbooks would silently leave
    some alerts without their runbook.
    """
    from remediator.core._playbook_schema import check_playbook_set

    playbooks, problems = check_playbook_set(playbook_files(Path(directory)), targets, teams)
    if problems:
        raise PlaybookSchemaError(f"invalid playbooks:\n{format_problems(problems)}")
    return playbooks


def playbook_files(directory: Path) -> list[Path]:
    """The YAML files of a playbook directory, sorted (PlaybookSchemaError if missing)."""
    if not directory.is_dir():
        raise PlaybookSchemaError(f"{directory}: playbook directory not found")
    return sorted(p for p in directory.iterdir() if p.suffix in (".yml", ".yaml") and p.is_file())


def select_playbook(
    playbooks: Sequence[Playbook], alert: Alert | Mapping[str, str],
) -> Playbook | None:
    """The playbook whose `match` labels all equal the alert's; the most labels wins.

    Ties go to the first in the given order (load_playbooks sorts by file name, and
    `remediator validate` reports playbooks whose match is identical).
    """
    labels = alert.labels if isinstance(alert, Alert) else alert
    best: Playbook | None = None
    for playbook in playbooks:
        if playbook.matches(labels) and (best is None or len(playbook.match) > len(best.match)):
            best = playbook
    return best
