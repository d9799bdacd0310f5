"""What an execution produces: lifecycle states, step results, escalation requests.

Everything here round-trips through `to_dict`/`from_dict` as plain JSON, because the
service stores results in SQLite and hands finished steps back to the runner on resume.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Final

from remediator.core.clock import iso, parse_iso

__all__ = [
    "RESOLVED_NOTE",
    "EscalationRequest",
    "ExecutionResult",
    "ExecutionState",
    "Outcome",
    "StepResult",
    "StepStatus",
    "jsonable",
]


class ExecutionState(StrEnum):
    """Where an execution is in its life (the store's column; the runner returns FINISHED)."""

    PENDING = "pending"          # queued, not started
    RUNNING = "running"          # a worker is running it
    FINISHED = "finished"        # ran to an outcome
    CANCELLED = "cancelled"      # a human claimed the incident or paused Remediator first


class StepStatus(StrEnum):
    """State of one step. RUNNING is only seen by on_step and in resume_from."""

    RUNNING = "running"
    OK = "ok"
    FAILED = "failed"
    TIMEOUT = "timeout"
    SKIPPED = "skipped"                  # `when` was false, or the alert resolved (fix phase)
    SKIPPED_DRY_RUN = "skipped_dry_run"  # mutating step in a dry run: rendered, not executed

    @property
    def finished(self) -> bool:
        """True once the step has a final status."""
        return self is not StepStatus.RUNNING

    @property
    def failed(self) -> bool:
        """True for the statuses `on_failure` acts on."""
        return self in (StepStatus.FAILED, StepStatus.TIMEOUT)


RESOLVED_NOTE: Final = "the alert resolved"
"""Why fixing stopped when the alert resolved mid-run: the one stop a run may end
`success` after (if its validation ran ok); a pause or a claim ends it `aborted`."""


class Outcome(StrEnum):
    """How an execution ended; `ExecutionResult.reason` says why."""

    SUCCESS = "success"      # ran to the end and no validate step failed
    FAILED = "failed"        # a step failed with on_failure: abort, or a validate step failed
    ESCALATED = "escalated"  # a human was asked (on_failure: escalate, notify, unsafe resume)
    ABORTED = "aborted"      # cut short: limits.timeout, wrong target, or fixing stopped by
                             # a pause or a claim (anything but RESOLVED_NOTE) before the end
    DRY_RUN = "dry_run"      # a dry run (whatever it found; see reason and would_escalate)


@dataclass(frozen=True)
class EscalationRequest:
    """A request for a human: which team, how urgent, why, and which step asked."""

    team: str
    level: str
    reason: str
    step_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON form."""
        return {"team": self.team, "level": self.level, "reason": self.reason,
                "step_id": self.step_id}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EscalationRequest:
        """Inverse of to_dict."""
        return cls(team=data["team"], level=data["level"], reason=data["reason"],
                   step_id=data.get("step_id"))


@dataclass
class StepResult:
    """One step as it ran: rendered arguments, outputs, status and timing.

    `error` explains a failure; `note` explains a skip or what a dry run would have done.
    """

    id: str
    action: str
    phase: str
    status: StepStatus
    outputs: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    rendered_args: dict[str, Any] = field(default_factory=dict)
    attempts: int = 0
    started_at: datetime | None = None
    duration_s: float = 0.0
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON form (non-JSON output values become strings)."""
        return {
            "id": self.id, "action": self.action, "phase": self.phase,
            "status": self.status.value, "outputs": jsonable(self.outputs),
            "error": self.error, "rendered_args": jsonable(self.rendered_args),
            "attempts": self.attempts, "started_at": _iso(self.started_at),
            "duration_s": self.duration_s, "note": self.note,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StepResult:
        """Inverse of to_dict."""
        return cls(
            id=data["id"], action=data["action"], phase=data["phase"],
            status=StepStatus(data["status"]), outputs=dict(data.get("outputs") or {}),
            error=data.get("error"), rendered_args=dict(data.get("rendered_args") or {}),
            attempts=int(data.get("attempts", 0)), started_at=_parse_iso(data.get("started_at")),
            duration_s=float(data.get("duration_s") or 0.0), note=data.get("note"),
        )


@dataclass
class ExecutionResult:
    """A whole run of one playbook against one target for one alert."""

    playbook: str
    target: str
    incident_key: str
    outcome: Outcome
    reason: str | None = None
    dry_run: bool = False
    steps: list[StepResult] = field(default_factory=list)
    escalations: list[EscalationRequest] = field(default_factory=list)
    would_escalate: list[EscalationRequest] = field(default_factory=list)
    scenario: str | None = None
    stopped_fixing: bool = False
    started_at: datetime | None = None
    finished_at: datetime | None = None

    @property
    def duration_s(self) -> float:
        """Wall-clock seconds from start to finish (0 if unknown)."""
        if self.started_at is None or self.finished_at is None:
            return 0.0
        return (self.finished_at - self.started_at).total_seconds()

    @property
    def validated(self) -> bool:
        """True when no validate step failed and one ran ok, or the playbook has none (it
        declares nothing to check): a run whose checks were all skipped is not validated."""
        checks = [step.status for step in self.steps if step.phase == "validate"]
        if any(status.failed for status in checks):
            return False
        return not checks or StepStatus.OK in checks

    def step(self, step_id: str) -> StepResult | None:
        """The result of the step with this id, if it ran."""
        return next((step for step in self.steps if step.id == step_id), None)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON form."""
        return {
            "playbook": self.playbook, "target": self.target,
            "incident_key": self.incident_key, "outcome": self.outcome.value,
            "reason": self.reason, "dry_run": self.dry_run,
            "steps": [step.to_dict() for step in self.steps],
            "escalations": [e.to_dict() for e in self.escalations],
            "would_escalate": [e.to_dict() for e in self.would_escalate],
            "scenario": self.scenario, "stopped_fixing": self.stopped_fixing,
            "started_at": _iso(self.started_at), "finished_at": _iso(self.finished_at),
            "duration_s": self.duration_s,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExecutionResult:
        """Inverse of to_dict."""
        return cls(
            playbook=data["playbook"], target=data["target"],
            incident_key=data["incident_key"], outcome=Outcome(data["outcome"]),
            reason=data.get("reason"), dry_run=bool(data.get("dry_run", False)),
            steps=[StepResult.from_dict(step) for step in data.get("steps", [])],
            escalations=[EscalationRequest.from_dict(e) for e in data.get("escalations", [])],
            would_escalate=[EscalationRequest.from_dict(e)
                            for e in data.get("would_escalate", [])],
            scenario=data.get("scenario"), stopped_fixing=bool(data.get("stopped_fixing")),
            started_at=_parse_iso(data.get("started_at")),
            finished_at=_parse_iso(data.get("finished_at")),
        )


def jsonable(value: Any) -> Any:
    """A copy of value made of JSON types only; anything else becomes its str()."""
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else str(value)
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(item) for item in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _iso(moment: datetime | None) -> str | None:
    return iso(moment) if moment is not None else None


def _parse_iso(text: Any) -> datetime | None:
    return parse_iso(text) if isinstance(text, str) and text else None

