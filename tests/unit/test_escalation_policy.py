"""The runbook's "Escalation Criteria", one test per criterion, against the shipped policy.

Time is injected: every IncidentFacts carries its own `now`, so the 10-minute rule is
tested at 9:59 and 10:00 without sleeping.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from remediator.core.escalation_eval import Escalation, EscalationPolicy, dedup_key
from remediator.core.escalation_facts import IncidentFacts
from remediator.core.escalation_load import load_escalation_policy, parse_escalation_policy
from remediator.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def policy() -> EscalationPolicy:
    return load_escalation_policy(ROOT / "config" / "escalation.yml")


def facts(at: timedelta = timedelta(minutes=1), **overrides: Any) -> IncidentFacts:
    values: dict[str, Any] = {
        "incident_id": "inc-1", "target": "app-prod", "service": "app-prod",
        "alertname": "ModelLoadFailure", "starts_at": T0, "now": T0 + at,
    }
    values.update(overrides)
    return IncidentFacts(**values)


def rules_for(policy: EscalationPolicy, team: str, incident: IncidentFacts) -> set[str]:
    return {e.rule for e in policy.evaluate(incident) if e.team == team}


def only(policy: EscalationPolicy, team: str, incident: IncidentFacts) -> Escalation:
    found = [e for e in policy.evaluate(incident) if e.team == team]
    assert len(found) == 1, found
    return found[0]


# ------------------------------------------------------------------ ML team lead


def test_ml_team_lead_when_load_fails_after_file_restored(policy: EscalationPolicy) -> None:
    escalation = only(policy, "ml-team-lead", facts(
        scenario="file_missing_or_corrupted", file_restored=True, still_failing=True))
    assert escalation.rule == "ml-load-fails-after-file-restored"
    assert escalation.level == "notify"
    assert "file_restored=true" in escalation.reason


def test_no_ml_team_lead_when_restoring_the_file_fixed_it(policy: EscalationPolicy) -> None:
    incident = facts(scenario="file_missing_or_corrupted", file_restored=True,
                     still_failing=False)
    assert policy.evaluate(incident) == []


def test_ml_team_lead_when_two_different_models_fail_to_load(policy: EscalationPolicy) -> None:
    two = facts(failing_models=frozenset({"mobile-mm-llm-int2", "mobile-mm-llm-int4"}))
    assert rules_for(policy, "ml-team-lead", two) == {"ml-multiple-models-failing"}
    one = facts(failing_models=frozenset({"mobile-mm-llm-int2"}))
    assert rules_for(policy, "ml-team-lead", one) == set()


def test_ml_team_lead_when_fallback_serves_longer_than_configured(
    policy: EscalationPolicy,
) -> None:
    def serving_for(minutes: float) -> IncidentFacts:
        return facts(at=timedelta(minutes=2 + minutes), fallback_active=True,
                     fallback_since=T0 + timedelta(minutes=2), fallback_available=True)

    assert rules_for(policy, "ml-team-lead", serving_for(29.9)) == set()
    assert rules_for(policy, "ml-team-lead", serving_for(30)) == {"ml-fallback-serving-too-long"}


def test_fallback_time_limit_is_configurable() -> None:
    custom = parse_escalation_policy({
        "teams": {"ml-team-lead": {"channels": [{"type": "slack",
                                                 "webhook_url": {"env": "SLACK_WEBHOOK_URL"}}]}},
        "rules": [{"name": "fallback", "team": "ml-team-lead", "level": "notify",
                   "when": [{"fact": "fallback_for", "gt": "5m"}]}],
    })
    since = T0 + timedelta(minutes=1)
    at_5m = facts(at=timedelta(minutes=6), fallback_active=True, fallback_since=since)
    after = facts(at=timedelta(minutes=6, seconds=1), fallback_active=True, fallback_since=since)
    assert custom.evaluate(at_5m) == []
    assert [e.rule for e in custom.evaluate(after)] == ["fallback"]


def test_ml_team_lead_once_per_target_per_budget_window_when_budget_exhausted(
    policy: EscalationPolicy,
) -> None:
    def exhausted(incident_id: str, minutes: int, target: str = "app-prod") -> str:
        escalation = only(policy, "ml-team-lead", facts(
            at=timedelta(minutes=minutes), incident_id=incident_id, target=target,
            budget_exhausted=True))
        assert escalation.rule == "ml-remediation-budget-exhausted"
        return escalation.dedup_key

    # The alert re-fires as new incidents within the hour: still one notification.
    first = exhausted("inc-1", 5)
    assert exhausted("inc-2", 20) == first
    assert exhausted("inc-3", 59) == first
    # Next budget window, or another target: a new notification.
    assert exhausted("inc-4", 65) != first
    assert exhausted("inc-5", 20, target="app-prod-2") != first


def test_budget_window_start_from_the_store_wins(policy: EscalationPolicy) -> None:
    window = T0 - timedelta(minutes=30)
    a = only(policy, "ml-team-lead", facts(budget_exhausted=True, budget_window_start=window))
    b = only(policy, "ml-team-lead", facts(at=timedelta(minutes=40), incident_id="inc-9",
                                           budget_exhausted=True, budget_window_start=window))
    assert a.dedup_key == b.dedup_key


# ---------------------------------------------------------------- infrastructure


def test_infrastructure_for_out_of_memory(policy: EscalationPolicy) -> None:
    escalation = only(policy, "infrastructure", facts(scenario="out_of_memory"))
    assert escalation.rule == "infra-hardware-related"
    assert "scenario=out_of_memory" in escalation.reason


def test_infrastructure_for_cuda_gpu_errors(policy: EscalationPolicy) -> None:
    assert rules_for(policy, "infrastructure", facts(scenario="cuda")) == {
        "infra-hardware-related"}


def test_infrastructure_when_two_or_more_services_affected(policy: EscalationPolicy) -> None:
    two = facts(affected_services=frozenset({"app-prod", "app-canary"}))
    assert rules_for(policy, "infrastructure", two) == {"infra-multiple-services-affected"}
    assert rules_for(policy, "infrastructure",
                     facts(affected_services=frozenset({"app-prod"}))) == set()


def test_several_services_affected_is_told_once_per_window_not_per_incident(
        policy: EscalationPolicy) -> None:
    two = frozenset({"app-prod", "app-canary"})

    def key(incident_id: str) -> str:
        (esc,) = [e for e in policy.evaluate(facts(incident_id=incident_id,
                                                   affected_services=two))
                  if e.rule == "infra-multiple-services-affected"]
        return esc.dedup_key

    assert key("1") == key("2")  # one notice for the fleet, whichever incident sees it


def test_infrastructure_for_disk_full(policy: EscalationPolicy) -> None:
    assert rules_for(policy, "infrastructure", facts(scenario="disk_full")) == {
        "infra-storage-problem"}


def test_infrastructure_for_volume_permissions(policy: EscalationPolicy) -> None:
    assert rules_for(policy, "infrastructure", facts(scenario="permission_denied")) == {
        "infra-storage-problem"}


@pytest.mark.parametrize("scenario", ["model_format", "missing_dependency", "configuration",
                                      "file_missing_or_corrupted", None])
def test_no_infrastructure_for_software_scenarios(policy: EscalationPolicy,
                                                  scenario: str | None) -> None:
    assert rules_for(policy, "infrastructure", facts(scenario=scenario)) == set()


@pytest.mark.parametrize("phase", ["none", "diagnose", "fix"])
def test_infrastructure_when_the_playbook_could_not_run(policy: EscalationPolicy,
                                                        phase: str) -> None:
    incident = facts(execution_outcome="failed", failed_phase=phase)
    assert rules_for(policy, "infrastructure", incident) == {"infra-remediation-could-not-run"}


def test_no_could_not_run_when_the_playbook_ran_and_validation_failed(
        policy: EscalationPolicy) -> None:
    incident = facts(execution_outcome="failed", failed_phase="validate")
    assert rules_for(policy, "infrastructure", incident) == set()


# --------------------------------------------------------------------- emergency


def test_emergency_when_down_more_than_10_minutes(policy: EscalationPolicy) -> None:
    assert rules_for(policy, "emergency", facts(at=timedelta(minutes=9, seconds=59))) == set()
    page = only(policy, "emergency", facts(at=timedelta(minutes=10)))
    assert (page.rule, page.level, page.severity) == (
        "emergency-down-more-than-10-minutes", "page", "critical")
    assert "down_for=10m" in page.reason


def test_emergency_down_timer_fires_once_at_10_minutes(policy: EscalationPolicy) -> None:
    # Nothing happens but the periodic timer (every second for 15 minutes). The outbox
    # keeps one row per dedup key; the page must appear once, exactly at 10:00.
    first_seen: dict[str, datetime] = {}
    for second in range(15 * 60 + 1):
        incident = facts(at=timedelta(seconds=second))
        for escalation in policy.evaluate(incident):
            first_seen.setdefault(escalation.dedup_key, incident.now)
    assert first_seen == {dedup_key("inc-1", "emergency", "page"): T0 + timedelta(minutes=10)}


def test_next_due_wakes_the_timer_at_exactly_10_minutes(policy: EscalationPolicy) -> None:
    assert policy.next_due(facts(at=timedelta(minutes=3))) == T0 + timedelta(minutes=10)
    assert policy.next_due(facts(at=timedelta(minutes=11))) is None  # already due
    assert policy.next_due(facts(claimed=True)) is None


def test_next_due_for_fallback_serving_too_long(policy: EscalationPolicy) -> None:
    since = T0 + timedelta(minutes=1)
    incident = facts(at=timedelta(minutes=2), fallback_active=True, fallback_since=since)
    assert policy.next_due(incident) == since + timedelta(minutes=30)


def test_no_emergency_for_a_memory_alert_firing_10_minutes(policy: EscalationPolicy) -> None:
    incident = facts(at=timedelta(minutes=30), alertname="ModelMemoryUsage")
    assert rules_for(policy, "emergency", incident) == set()


def test_no_emergency_while_the_fallback_model_serves(policy: EscalationPolicy) -> None:
    incident = facts(at=timedelta(minutes=12), fallback_active=True,
                     fallback_since=T0 + timedelta(minutes=1), fallback_available=True)
    assert rules_for(policy, "emergency", incident) == set()


def test_emergency_when_no_fallback_model_available(policy: EscalationPolicy) -> None:
    assert rules_for(policy, "emergency", facts(fallback_available=False)) == {
        "emergency-no-fallback-model"}
    assert rules_for(policy, "emergency", facts(fallback_available=None)) == set()  # unchecked


def test_emergency_when_data_corruption_suspected(policy: EscalationPolicy) -> None:
    incident = facts(scenario="file_missing_or_corrupted", file_restored=False,
                     backup_checksum_ok=False)
    escalation = only(policy, "emergency", incident)
    assert escalation.rule == "emergency-data-corruption-suspected"
    assert rules_for(policy, "emergency", facts(backup_checksum_ok=True)) == set()


# ------------------------------------------------------------------- semantics


def test_claimed_incident_evaluates_to_nothing(policy: EscalationPolicy) -> None:
    incident = facts(at=timedelta(minutes=30), claimed=True, scenario="cuda",
                     fallback_available=False, backup_checksum_ok=False)
    assert policy.evaluate(incident) == []


def test_resolved_incident_evaluates_to_nothing(policy: EscalationPolicy) -> None:
    assert policy.evaluate(facts(at=timedelta(minutes=30), status="resolved",
                                 scenario="cuda")) == []


def test_one_escalation_per_team_and_level_when_several_rules_match(
    policy: EscalationPolicy,
) -> None:
    incident = facts(scenario="out_of_memory", fallback_active=True)
    infra = [e for e in policy.evaluate(incident) if e.team == "infrastructure"]
    assert len(infra) == 1
    assert infra[0].dedup_key == dedup_key("inc-1", "infrastructure", "notify")
    assert infra[0].rule == "infra-hardware-related"
    assert "hardware-related" in infra[0].reason


def test_fleet_wide_rule_stays_apart_from_the_incidents_own_notice(
    policy: EscalationPolicy,
) -> None:
    incident = facts(scenario="out_of_memory",
                     affected_services=frozenset({"app-prod", "app-canary"}))
    infra = {e.rule: e for e in policy.evaluate(incident) if e.team == "infrastructure"}
    assert set(infra) == {"infra-hardware-related", "infra-multiple-services-affected"}
    assert infra["infra-hardware-related"].dedup_key == dedup_key("inc-1", "infrastructure",
                                                                   "notify")
    assert "/window/" in infra["infra-multiple-services-affected"].dedup_key


def test_several_teams_at_once(policy: EscalationPolicy) -> None:
    incident = facts(at=timedelta(minutes=11), scenario="cuda", fallback_available=False)
    assert {(e.team, e.level) for e in policy.evaluate(incident)} == {
        ("infrastructure", "notify"), ("emergency", "page")}


def test_dedup_key_is_stable_distinct_and_bounded() -> None:
    assert dedup_key("inc-1", "emergency", "page") == dedup_key("inc-1", "emergency", "page")
    assert dedup_key("inc-1", "emergency", "page") != dedup_key("inc-1", "emergency", "notify")
    assert dedup_key("inc-1", "emergency", "page") != dedup_key("inc-2", "emergency", "page")
    long_key = dedup_key("x" * 600, "emergency", "page")
    assert len(long_key) <= 255
    assert long_key != dedup_key("x" * 599 + "y", "emergency", "page")


def test_explicit_escalation_from_a_playbook(policy: EscalationPolicy) -> None:
    escalation = policy.explicit("inc-1", "infrastructure", "page", reason="restart failed",
                                 rule="playbook:model-load-failure")
    assert escalation == Escalation("infrastructure", "page", "playbook:model-load-failure",
                                    "restart failed", "critical",
                                    dedup_key("inc-1", "infrastructure", "page"))
    with pytest.raises(ConfigError, match="no team 'oncall'"):
        policy.explicit("inc-1", "oncall")
    with pytest.raises(ConfigError, match="level 'critical'"):
        policy.explicit("inc-1", "emergency", "critical")


def test_playbook_request_and_rule_for_the_same_team_notify_once(
    policy: EscalationPolicy,
) -> None:
    from_rule = only(policy, "emergency", facts(fallback_available=False))
    from_playbook = policy.explicit("inc-1", "emergency", "page", reason="no fallback")
    assert from_rule.dedup_key == from_playbook.dedup_key


def test_naive_datetimes_are_taken_as_utc(policy: EscalationPolicy) -> None:
    naive = facts(starts_at=T0.replace(tzinfo=None), at=timedelta(minutes=10))
    assert rules_for(policy, "emergency", naive) == {"emergency-down-more-than-10-minutes"}


def test_label_conditions() -> None:
    custom = parse_escalation_policy({
        "teams": {"emergency": {"channels": [{"type": "webhook",
                                              "url": {"env": "ESCALATION_WEBHOOK_URL"}}]}},
        "rules": [{"name": "critical-label", "team": "emergency", "level": "page",
                   "when": [{"fact": "labels.severity", "eq": "critical"}]}],
    })
    assert custom.evaluate(facts(labels={"severity": "critical"}))[0].rule == "critical-label"
    assert custom.evaluate(facts(labels={"severity": "warning"})) == []
    assert custom.evaluate(facts()) == []
