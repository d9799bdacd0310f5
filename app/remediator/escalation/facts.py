"""What the store knows about an incident, as :class:`IncidentFacts` for the policy.

Facts come from the incident record (alert, status, claim, intake's budget note), from its
latest finished execution (scenario, which steps passed or failed, what the health checks
saw) and from the other open incidents (how many services are affected). A fact nothing
established stays unknown, so no rule fires on a guess.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from remediator.core import defaults
from remediator.core.escalation_facts import IncidentFacts
from remediator.core.units import parse_duration
from remediator.store import parse_iso
from remediator.store.records import Execution, Incident, IncidentStatus, StepRecord

__all__ = [
    "BUDGET_NOTE_PREFIX",
    "FOR_ANNOTATION",
    "RESTORE_STEP",
    "VALIDATE_STEP",
    "VERIFY_STEP",
    "Fleet",
    "down_since",
    "failed_phase",
    "fleet",
    "incident_facts",
    "incident_identity",
    "message_context",
]

RESTORE_STEP: Final = "restore_model"
"""Step whose success means the model file was restored from backup (file_restored)."""

VALIDATE_STEP: Final = "health"
"""Step whose failure after the fix means the model still does not load (still_failing)."""

VERIFY_STEP: Final = "verify_model"
"""Step that loads the restored backup; its failure means the backup is bad too."""

BUDGET_NOTE_PREFIX: Final = "budget exhausted"
"""How intake's note starts when the target's run budget stopped it acting."""

_FAILED: Final = ("failed", "timeout")  # step statuses

FOR_ANNOTATION: Final = "for"
"""The annotation in which an alert rule repeats its own ``for:`` (see down_since)."""


def incident_identity(incident: Incident) -> str:
    """The incident as notifications name it: its id, plus the reopen count once reopened.

    A regression reopens the incident (store migration 3); its earlier notices were
    resolved, so it needs fresh dedup keys to be notified (and resolved) again.
    """
    return f"{incident.id}" if not incident.reopened else f"{incident.id}.{incident.reopened}"


@dataclass(frozen=True)
class Fleet:
    """The cross-incident facts, from all firing incidents: the same for every incident
    of one timer pass, so computed once per pass (not once per incident: n² in a storm)."""

    failing_models: frozenset[str]
    affected_services: frozenset[str]


def fleet(open_incidents: Iterable[Incident]) -> Fleet:
    firing = _firing(open_incidents)
    return Fleet(_failing_models(firing), _affected_services(firing))


def incident_facts(
    incident: Incident,
    execution: Execution | None,
    open_incidents: Iterable[Incident] | Fleet,
    now: datetime,
) -> IncidentFacts:
    """Facts about ``incident`` at ``now``.

    ``execution`` is its latest finished execution (as stored, with steps) or None;
    ``open_incidents`` are all firing incidents (or their :func:`fleet`), for the
    cross-incident counts.
    """
    others = open_incidents if isinstance(open_incidents, Fleet) else fleet(open_incidents)
    labels = {str(k): str(v) for k, v in incident.labels.items()}
    steps = {step.id: step for step in (execution.steps if execution else ())}
    fallback = _health_flag(steps.values(), "fallback_active")
    starts_at = down_since(incident)
    return IncidentFacts(
        incident_id=incident_identity(incident),
        target=incident.target or "",
        service=labels.get("service", incident.target or ""),
        alertname=incident.alertname or labels.get("alertname", ""),
        starts_at=starts_at,
        now=now,
        status=incident.status.value,
        scenario=execution.scenario if execution else None,
        file_restored=_status(steps, RESTORE_STEP) == "ok",
        still_failing=_status(steps, VALIDATE_STEP) in _FAILED,
        failing_models=others.failing_models,
        affected_services=others.affected_services,
        fallback_active=bool(fallback),
        # ModelLoadFailure's condition holds as soon as the fallback serves, so when it
        # went down is the best record of when the fallback took over.
        fallback_since=starts_at if fallback else None,
        fallback_available=_health_flag(steps.values(), "fallback_available"),
        backup_checksum_ok=_verified(steps),
        budget_exhausted=(incident.note or "").startswith(BUDGET_NOTE_PREFIX),
        claimed=bool(incident.claimed_by),
        severity=labels.get("severity"),
        execution_outcome=execution.outcome if execution else None,
        failed_phase=failed_phase(execution),
        labels=labels,
    )


def down_since(incident: Incident) -> datetime:
    """When the service went down, by the alert.

    An alert's ``startsAt`` is when Prometheus fired it: after its rule's condition had
    held for the rule's ``for:``. A rule that repeats its ``for:`` in the ``for``
    annotation (monitoring/alerts.yml does for ModelLoadFailure) lets "down for 10
    minutes" count from when the condition started; without one (or with one that is not
    a duration) it counts from ``startsAt``. The annotation is data: at most
    defaults.MAX_ALERT_FOR_S (5 minutes) is taken off, so however large a stray value, a 10-minute
    rule still waits 5 minutes past ``startsAt`` before it pages.

    The count errs late, never early, where a rule's branch holds only after a window of
    its own: ModelLoadFailure's fast branch (the app says the primary is not serving)
    fires after ``for: 10s``, which the annotation repeats exactly; its slow branches
    (down for 30 s, loading for 150 s) hold only once their window has passed, so the
    service was down up to that window (30 s or 150 s) before this count starts."""
    starts = parse_iso(incident.starts_at)
    raw = incident.annotations.get(FOR_ANNOTATION)
    if raw is None:
        return starts
    try:
        held = parse_duration(str(raw))
    except ValueError:
        return starts
    return starts - timedelta(seconds=min(held, defaults.MAX_ALERT_FOR_S))


def failed_phase(execution: Execution | None) -> str | None:
    """Of a failed execution, the phase of the step whose failure ended it: the last step
    that failed (steps are stored in playbook order, phases in order, and a run stops at
    an aborting step; a validate failure ends it after the other validate steps ran).
    ``"none"`` when no step failed: the run crashed or could not start. None (unknown)
    for an execution that did not fail, or no execution."""
    if execution is None or execution.outcome != "failed":
        return None
    failed = [step for step in execution.steps if step.status.value in _FAILED]
    return (failed[-1].phase or "none") if failed else "none"


def _status(steps: Mapping[str, StepRecord], step_id: str) -> str | None:
    step = steps.get(step_id)
    return step.status.value if step else None


def _verified(steps: Mapping[str, StepRecord]) -> bool | None:
    status = _status(steps, VERIFY_STEP)
    if status == "ok":
        return True
    return False if status in _FAILED else None


def _health_flag(steps: Iterable[StepRecord], key: str) -> bool | None:
    # /model/health (and a degraded /health) report fallback_active; the last step that
    # saw the flag wins, because it is the freshest observation.
    seen: bool | None = None
    for step in steps:
        body = step.outputs.get("body")
        if isinstance(body, dict) and isinstance(body.get(key), bool):
            seen = body[key]
    return seen


def _firing(open_incidents: Iterable[Incident]) -> list[Incident]:
    return [i for i in open_incidents if i.status is IncidentStatus.FIRING]


def _affected_services(open_incidents: Iterable[Incident]) -> frozenset[str]:
    # Across every target: each firing alert's service (its `service` label, else the
    # target it matched); replicas of one service count once.
    names = {str(i.labels.get("service") or i.target or "") for i in
             _firing(open_incidents)}
    return frozenset(name for name in names if name)


def _failing_models(open_incidents: Iterable[Incident]) -> frozenset[str]:
    # Only ModelLoadFailure alerts that name their model (the serving alerts' `model`
    # label) count; one without stays out rather than being guessed from service names.
    return frozenset(str(i.labels["model"]) for i in _firing(open_incidents)
                     if i.alertname == "ModelLoadFailure" and i.labels.get("model"))


def message_context(
    incident: Incident, execution: Execution | None, now: datetime,
) -> dict[str, Any]:
    """The template context (render_message) describing ``incident`` and what was tried."""
    steps = execution.steps if execution else ()
    return {
        "incident": {
            "id": str(incident.id), "alertname": incident.alertname,
            "target": incident.target or "", "status": incident.status.value,
            "starts_at": incident.starts_at, "labels": dict(incident.labels),
            "annotations": dict(incident.annotations),
            "generator_url": incident.generator_url,
            "down_for": _down_for(incident, now),
        },
        "diagnosis": {"scenario": (execution.scenario if execution else None) or "",
                      "summary": (execution.error if execution else None) or ""},
        "steps": [{"id": s.id, "action": s.action, "outcome": s.status.value,
                   "detail": s.error or s.note or ""} for s in steps],
        "now": now.isoformat(),
    }


def _down_for(incident: Incident, now: datetime) -> str:
    if incident.status is not IncidentStatus.FIRING:
        return ""
    seconds = max(0, int((now - down_since(incident)).total_seconds()))
    minutes, rest = divmod(seconds, 60)
    return f"down {minutes}m{rest:02d}s"

