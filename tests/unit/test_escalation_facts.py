"""Facts from stored records (escalation/facts.py), through the shipped policy: the rule a
fact feeds must fire for what its reason says, and not for something else."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from remediator.core.escalation_eval import EscalationPolicy
from remediator.core.escalation_load import load_escalation_policy
from remediator.core.results import ExecutionState, StepStatus
from remediator.escalation.facts import down_since, incident_facts
from remediator.store.records import Execution, Incident, IncidentStatus, StepRecord

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)
COULD_NOT_RUN = "infra-remediation-could-not-run"


@pytest.fixture(scope="module")
def policy() -> EscalationPolicy:
    return load_escalation_policy(ROOT / "config" / "escalation.yml")


def incident(annotations: dict[str, str] | None = None) -> Incident:
    return Incident(id=1, incident_key="k", fingerprint="f", alertname="ModelLoadFailure",
                    starts_at=T0.isoformat(), status=IncidentStatus.FIRING,
                    labels={"alertname": "ModelLoadFailure", "service": "app-prod"},
                    annotations=annotations or {}, generator_url="", target="app-prod",
                    note=None, notices=0, created_at=T0.isoformat(),
                    updated_at=T0.isoformat())


def failed_run(*steps: tuple[str, str, StepStatus]) -> Execution:
    return Execution(id=1, incident_id=1, playbook="model-load-failure", target="app-prod",
                     state=ExecutionState.FINISHED, alert=None, dry_run=False,
                     created_at=T0.isoformat(), outcome="failed", error="x",
                     steps=tuple(StepRecord(id=i, action="a", phase=p, status=s)
                                 for i, p, s in steps))


def infrastructure(policy: EscalationPolicy, execution: Execution) -> set[str]:
    facts = incident_facts(incident(), execution, [incident()], T0 + timedelta(minutes=1))
    return {e.rule for e in policy.evaluate(facts) if e.team == "infrastructure"}


OK, FAILED = StepStatus.OK, StepStatus.FAILED


@pytest.mark.parametrize("steps", [
    (),  # crashed before any step (the worker's "internal error")
    (("inspect", "diagnose", FAILED),),  # its Docker engine did not answer
    (("logs", "diagnose", OK), ("restart", "fix", StepStatus.TIMEOUT)),
])
def test_infrastructure_hears_when_the_playbook_could_not_run(
        policy: EscalationPolicy, steps: tuple[tuple[str, str, StepStatus], ...]) -> None:
    assert infrastructure(policy, failed_run(*steps)) == {COULD_NOT_RUN}


def test_infrastructure_is_not_told_the_playbook_could_not_run_when_validation_failed(
        policy: EscalationPolicy) -> None:
    # The playbook ran; the model_health check (on_failure: abort) found it still broken.
    run = failed_run(("inspect", "diagnose", OK), ("check", "diagnose", FAILED),
                     ("restart", "fix", OK), ("health", "validate", OK),
                     ("model_health", "validate", FAILED))
    assert COULD_NOT_RUN not in infrastructure(policy, run)


@pytest.mark.parametrize(("annotation", "back"), [
    ("10s", 10),  # ModelLoadFailure's for:, repeated: counted from when it went down
    ("2h", 300),  # a stray value moves the start back 5 minutes at most
    ("soon", 0),  # not a duration: startsAt
])
def test_down_since_takes_the_for_annotation_off_startsat_capped_at_5_minutes(
        policy: EscalationPolicy, annotation: str, back: int) -> None:
    stray = incident({"for": annotation})
    assert down_since(stray) == T0 - timedelta(seconds=back)
    # Whatever the annotation says, the 10-minute page does not go out on arrival.
    facts = incident_facts(stray, None, [stray], T0)
    assert not {e.rule for e in policy.evaluate(facts) if e.team == "emergency"}
