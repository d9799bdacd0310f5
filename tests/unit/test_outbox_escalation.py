"""The runbook's Escalation Criteria in the running service: who is told, when, once.

A Service with the shipped config/escalation.yml, a scripted runtime (no Docker), local
sinks for Slack and PagerDuty, and a clock the tests move by hand.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from flask.testing import FlaskClient

from devstack.stack import Timings, render_alerts
from remediator.core.escalation_eval import EscalationPolicy
from remediator.core.escalation_load import load_escalation_policy
from remediator.core.units import parse_duration
from remediator.service.build import Service
from remediator.service.cli import main
from remediator.service.web import create_app
from remediator.store.sqlite import SqliteStore as Store
from tests.support import HttpSink, PagerDutySink
from tests.support.escalation_kit import (
    ROUTING_KEY,
    T0,
    alert_in,
    escalation_service,
    firing,
    policy_from_yaml,
    resolved,
    run_pending,
)
from tests.support.fakes import FakeClock, FakeRuntime, model_app

ROOT = Path(__file__).resolve().parents[2]
AUTH = {"Authorization": "Bearer t"}


@pytest.fixture(scope="module")
def shipped() -> EscalationPolicy:
    return load_escalation_policy(ROOT / "config" / "escalation.yml")


@pytest.fixture
def slack() -> Iterator[HttpSink]:
    with HttpSink(path="/services/T0/B0/secret") as sink:
        yield sink


@pytest.fixture
def pagerduty() -> Iterator[PagerDutySink]:
    with PagerDutySink() as sink:
        yield sink


@pytest.fixture
def env(slack: HttpSink, pagerduty: PagerDutySink) -> dict[str, str]:
    return {"SLACK_WEBHOOK_URL": slack.url, "PAGERDUTY_ROUTING_KEY": ROUTING_KEY,
            "PAGERDUTY_EVENTS_URL": pagerduty.url}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def runtime() -> FakeRuntime:
    return model_app()


def key(service: Service, rest: str) -> str:
    """A dedup key as this service's store writes it: inside the store's own namespace."""
    return f"remediator/{service.store.instance_id}/{rest}"


def test_dedup_keys_carry_the_store_so_a_new_store_never_reuses_an_old_alerts_key(
        tmp_path: Path, service: Service) -> None:
    # A wiped store numbers incidents from 1 again: PagerDuty would fold the new incident's
    # page into an alert still open from the old store, and nobody would be woken.
    other = Store(tmp_path / "other.db")
    assert re.fullmatch(r"[0-9a-f]{8}", service.store.instance_id)
    assert other.instance_id != service.store.instance_id
    assert Store(service.store.path).instance_id == service.store.instance_id  # kept


@pytest.fixture
def service(tmp_path: Path, shipped: EscalationPolicy, env: dict[str, str], clock: FakeClock,
            runtime: FakeRuntime) -> Iterator[Service]:
    svc = escalation_service(tmp_path, shipped, env, clock, runtime)
    yield svc
    svc.close()


def rows(service: Service, kind: str | None = None) -> list[dict[str, Any]]:
    items = service.escalation.notifications(100) if service.escalation else []
    return [n for n in reversed(items) if kind is None or n["kind"] == kind]


def deliver(service: Service) -> None:
    assert service.escalation is not None
    service.escalation.dispatcher.deliver_due()


def timer(service: Service) -> Any:
    assert service.escalation is not None
    return service.escalation.evaluate_open()


def pages(service: Service) -> list[dict[str, Any]]:
    return [n for n in rows(service, "trigger") if n["level"] == "page"]


# -- Emergency Escalation: "Production service has been down for >10 minutes" -----------


def test_down_for_10_minutes_pages_at_10_00_not_9_59(service: Service, clock: FakeClock,
                                                     pagerduty: PagerDutySink) -> None:
    alert_in(service, firing(T0, labels={"service": "not-a-target"}))  # nothing acts on it
    clock.advance(minutes=9, seconds=59)
    assert timer(service) == T0.replace(minute=10)  # the timer sleeps until exactly 10:00
    assert pages(service) == []
    clock.advance(seconds=1)
    timer(service)
    deliver(service)
    (page,) = pages(service)
    assert (page["team"], page["rule"]) == ("emergency", "emergency-down-more-than-10-minutes")
    assert "down_for=10m" in page["reason"]
    assert pagerduty.verdicts == [202]
    event = pagerduty.events[0]
    assert (event["event_action"], event["payload"]["severity"]) == ("trigger", "critical")
    assert event["dedup_key"] == page["dedup_key"] == key(service, "1/emergency/page")


def test_a_pass_evaluates_again_only_what_changed_or_is_due(
        service: Service, clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    assert service.escalation is not None
    evaluated: list[str] = []
    real = service.escalation.policy.matches

    def counting(facts: Any) -> Any:
        evaluated.append(facts.service)
        return real(facts)

    monkeypatch.setattr(service.escalation.policy, "matches", counting)
    for n, name in enumerate("abc"):
        alert_in(service, firing(T0, fingerprint=f"{n:016x}",
                                 labels={"service": f"not-a-target-{name}"}))
    timer(service)
    assert sorted(evaluated) == ["not-a-target-a", "not-a-target-b", "not-a-target-c"]
    evaluated.clear()
    clock.advance(minutes=1)
    timer(service)  # nothing changed, nothing due: an alert storm costs no rule evaluations
    assert evaluated == []
    alert_in(service, firing(T0, fingerprint=f"{0:016x}",
                             labels={"service": "not-a-target-a"}))  # a repeat notice
    timer(service)
    assert evaluated == ["not-a-target-a"]
    evaluated.clear()
    clock.advance(minutes=9)  # 10:00: every one's down-for rule is due
    timer(service)
    assert sorted(evaluated) == ["not-a-target-a", "not-a-target-b", "not-a-target-c"]
    assert len(pages(service)) == 3


def test_an_incident_that_cannot_be_evaluated_does_not_hold_up_the_others_pages(
        service: Service, clock: FakeClock, pagerduty: PagerDutySink,
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    assert service.escalation is not None
    real = service.escalation.policy.matches

    def broken_for_one(facts: Any) -> Any:
        if facts.service == "not-a-target-broken":
            raise RuntimeError("a bug evaluating this one incident")
        return real(facts)

    monkeypatch.setattr(service.escalation.policy, "matches", broken_for_one)
    alert_in(service, firing(T0, fingerprint=f"{1:016x}",
                             labels={"service": "not-a-target-broken"}))  # incident 1
    alert_in(service, firing(T0, fingerprint=f"{2:016x}",
                             labels={"service": "not-a-target-b"}))  # incident 2
    clock.advance(minutes=10)
    timer(service)
    deliver(service)
    assert [(p["incident_id"], p["status"]) for p in pages(service)] == [(2, "delivered")]
    assert "escalation of incident 1 failed" in caplog.text
    alert_in(service, resolved(T0, fingerprint=f"{2:016x}"))
    clock.advance(minutes=1)
    timer(service)  # incident 1 still fails; incident 2's page is still resolved
    deliver(service)
    assert [e["event_action"] for e in pagerduty.events] == ["trigger", "resolve"]
    assert [(n["team"], n["status"]) for n in rows(service, "resolve")
            if n["level"] == "page"] == [("emergency", "delivered")]


def test_a_once_per_window_rule_notifies_again_in_the_next_window(
        service: Service, clock: FakeClock) -> None:
    for n, name in enumerate("ab"):
        alert_in(service, firing(clock(), fingerprint=f"{n:016x}",
                                 labels={"service": f"not-a-target-{name}"}))
    clock.advance(minutes=15)  # past every time-based rule: no incident has a due time left
    assert timer(service) == T0.replace(hour=13)  # but the fleet rule's window ends at 13:00
    clock.advance(minutes=5)
    timer(service)  # same window, nothing changed: no second notice

    def fleet_notices() -> list[dict[str, Any]]:
        return [n for n in rows(service, "trigger")
                if n["rule"] == "infra-multiple-services-affected"]

    assert len(fleet_notices()) == 1
    clock.advance(hours=1)  # both still fire, nothing else changed: a new window
    timer(service)
    first, second = fleet_notices()
    assert first["dedup_key"] != second["dedup_key"]


@pytest.mark.parametrize("alert_for", ["30s", None])  # a test stack's shortened for:, shipped
def test_down_for_10_minutes_counts_from_when_the_service_went_down_not_from_startsAt(
        service: Service, clock: FakeClock, alert_for: str | None) -> None:
    # Prometheus fires ModelLoadFailure (startsAt) once its condition held for the rule's
    # `for:`; the service went down that much earlier. The alert carries the rule's own
    # annotations, as Alertmanager delivers them.
    text = render_alerts((ROOT / "monitoring" / "alerts.yml").read_text(),
                         Timings(alert_for=alert_for))
    (rule,) = [r for g in yaml.safe_load(text)["groups"] for r in g["rules"]
               if r.get("alert") == "ModelLoadFailure"]
    went_down = T0 - timedelta(seconds=parse_duration(rule["for"]))
    alert_in(service, firing(T0, labels={"service": "not-a-target"},
                             annotations=rule["annotations"]))
    due = went_down + timedelta(minutes=10)
    clock.advance(seconds=(due - T0).total_seconds() - 1)
    assert timer(service) == due  # the timer sleeps until 10 minutes after it went down
    assert pages(service) == []
    clock.advance(seconds=1)
    timer(service)
    (page,) = pages(service)
    assert page["rule"] == "emergency-down-more-than-10-minutes"
    assert "down_for=10m" in page["reason"]


def test_a_rule_that_keeps_matching_notifies_once(service: Service, clock: FakeClock,
                                                  pagerduty: PagerDutySink) -> None:
    alert_in(service, firing(T0, labels={"service": "not-a-target"}))
    for minutes in (10, 11, 15, 60):
        clock.advance(minutes=minutes)
        timer(service)
        deliver(service)
    assert len(pages(service)) == 1
    assert pagerduty.verdicts == [202]
    escalations = service.metrics.registry.get_sample_value(
        "remediator_escalations_total",
        {"team": "emergency", "rule": "emergency-down-more-than-10-minutes"})
    assert escalations == 1.0


TWO_CRITERIA = """
version: 1
channels:
  slack: {type: slack, webhook_url: {env: SLACK_WEBHOOK_URL}}
  pagerduty:
    type: pagerduty
    routing_key: {env: PAGERDUTY_ROUTING_KEY}
    events_url: {env: PAGERDUTY_EVENTS_URL}
    levels: [page]
teams:
  ml-team-lead: {channels: [slack]}
  emergency: {channels: [pagerduty, slack]}
rules:
  - {name: down-5m, team: emergency, level: page, reason: Down for 5 minutes,
     when: [{fact: down_for, ge: 5m}]}
  - {name: still-down-15m, team: emergency, level: page, reason: Still down after 15 minutes,
     when: [{fact: down_for, ge: 15m}]}
"""


def test_a_later_different_criterion_for_a_notified_team_and_level_sends_an_update(
        tmp_path: Path, env: dict[str, str], clock: FakeClock, slack: HttpSink,
        pagerduty: PagerDutySink) -> None:
    service = escalation_service(tmp_path, policy_from_yaml(TWO_CRITERIA), env, clock)
    try:
        alert_in(service, firing(T0, labels={"service": "not-a-target"}))
        clock.advance(minutes=5)
        timer(service)
        deliver(service)
        (page,) = pages(service)
        assert page["rule"] == "down-5m"
        clock.advance(minutes=10)  # a second criterion for the same incident, team, level
        timer(service)
        deliver(service)
        (update,) = rows(service, "update")
        assert (update["team"], update["level"], update["rule"], update["status"]) == (
            "emergency", "page", "still-down-15m", "delivered")
        assert "still-down-15m" in update["reason"] and "Still down after 15" in update["reason"]
        assert "still-down-15m" in slack.requests[-1].text  # the people read which one
        first, second = pagerduty.events  # folded into the alert PagerDuty has open
        assert first["dedup_key"] == second["dedup_key"] == page["dedup_key"]
        assert "still-down-15m" in second["payload"]["custom_details"]["text"]
        clock.advance(minutes=30)  # both still hold: nothing more
        timer(service)
        deliver(service)
        assert len(rows(service, "update")) == 1 and len(pagerduty.events) == 2
        alert_in(service, resolved(T0))
        timer(service)
        deliver(service)
        assert [e["event_action"] for e in pagerduty.events] == ["trigger", "trigger",
                                                                 "resolve"]
    finally:
        service.close()


def test_a_playbook_request_and_a_rule_for_the_same_team_share_one_notification(
        service: Service, runtime: FakeRuntime, clock: FakeClock) -> None:
    runtime.healthy = False  # restored, restarted, still failing: the playbook notifies too
    alert_in(service, firing(T0))
    run_pending(service)
    clock.advance(minutes=5)
    timer(service)
    ml = [n for n in rows(service, "trigger") if n["team"] == "ml-team-lead"]
    assert len(ml) == 1
    assert ml[0]["rule"] == "playbook:model-load-failure/still_failing"
    assert "Model still not healthy after the fix" in ml[0]["reason"]  # the playbook's words
    assert "file_restored=true, still_failing=true" in ml[0]["reason"]  # and the rule's
    assert ml[0]["dedup_key"] == key(service, "1/ml-team-lead/notify")
    assert rows(service, "update") == []  # both criteria were in it: no update follows


def test_an_escalation_that_fails_after_the_execution_ended_is_kept_and_sent_later(
        service: Service, runtime: FakeRuntime, clock: FakeClock,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # The playbook's request is committed with the execution's end: an error in the hook
    # (here: the store briefly refusing the read) no longer loses it.
    assert service.escalation is not None
    runtime.healthy = False
    alert_in(service, firing(T0))
    # The hook gets the finished execution from the worker; the read it still makes of
    # its own is the incident's first playbook (the "acting" notice).
    real = service.store.first_playbook

    def busy(_incident_id: int) -> Any:
        raise RuntimeError("store busy")

    monkeypatch.setattr(service.store, "first_playbook", busy)
    run_pending(service)
    assert rows(service) == []
    assert service.store.pending_escalations()  # kept with the execution's end
    monkeypatch.setattr(service.store, "first_playbook", real)
    timer(service)
    (ml,) = [n for n in rows(service, "trigger") if n["team"] == "ml-team-lead"]
    assert "Model still not healthy after the fix" in ml["reason"]
    assert service.store.pending_escalations() == []


# -- Escalate to ML Team Lead if: "Model loading continues to fail after restoration" ---


def test_model_still_failing_after_file_restored_notifies_ml_team_lead(
        service: Service, runtime: FakeRuntime, slack: HttpSink) -> None:
    runtime.healthy = False
    alert_in(service, firing(T0))
    run_pending(service)
    deliver(service)
    (trigger,) = rows(service, "trigger")
    assert (trigger["team"], trigger["level"], trigger["status"]) == (
        "ml-team-lead", "notify", "delivered")
    assert "file_restored=true" in trigger["reason"]
    assert "still_failing=true" in trigger["reason"]
    slack_texts = [r.text for r in slack.requests]
    assert any("restored from backup" in text for text in slack_texts)


# -- The run budget: "escalates instead of looping" ----------------------------------------


def test_spent_budget_tells_ml_team_lead_once_per_target_and_window(service: Service) -> None:
    for n in range(7):  # the budget is 5 runs per hour: the 6th and 7th are not acted on
        alert_in(service, firing(T0, fingerprint=f"{n:016x}"))
    timer(service)
    (notice,) = rows(service, "trigger")
    assert (notice["team"], notice["rule"]) == ("ml-team-lead",
                                                "ml-remediation-budget-exhausted")
    assert notice["dedup_key"].startswith(key(service, "budget/app-prod/"))
    assert notice["incident_id"] == 6


# -- People in the loop -------------------------------------------------------------------


def test_chat_hears_when_remediator_starts_and_when_it_is_fixed(
        service: Service, slack: HttpSink, pagerduty: PagerDutySink) -> None:
    alert_in(service, firing(T0))
    run_pending(service)
    deliver(service)
    infos = rows(service, "info")
    assert [n["dedup_key"].rsplit("/", 1)[1] for n in infos] == ["acting", "fixed"]
    assert [n["status"] for n in infos] == ["delivered", "delivered"]
    assert "acting on it" in slack.requests[0].text and "fixed it" in slack.requests[1].text
    assert rows(service, "trigger") == [] and pagerduty.requests == []  # nobody paged


def test_chat_hears_when_remediator_gives_up(service: Service,
                                             runtime: FakeRuntime) -> None:
    runtime.on_call = lambda action: _fail_restart(action)
    alert_in(service, firing(T0))
    run_pending(service)
    infos = rows(service, "info")
    assert [n["dedup_key"].rsplit("/", 1)[1] for n in infos] == ["acting", "gave-up"]


def _fail_restart(action: str) -> None:
    from remediator.errors import ActionFailed

    if action == "docker.restart":
        raise ActionFailed("container app-test is gone")


# -- Resolve notices ----------------------------------------------------------------------


def test_resolving_sends_a_resolve_with_the_same_pagerduty_dedup_key(
        service: Service, clock: FakeClock, pagerduty: PagerDutySink) -> None:
    alert_in(service, firing(T0, labels={"service": "not-a-target"}))
    clock.advance(minutes=10)
    timer(service)
    deliver(service)
    alert_in(service, resolved(T0))
    timer(service)
    deliver(service)
    assert pagerduty.verdicts == [202, 202]
    trigger, resolve = pagerduty.events
    assert resolve["event_action"] == "resolve"
    assert resolve["dedup_key"] == trigger["dedup_key"] == key(service, "1/emergency/page")
    (notice,) = rows(service, "resolve")
    assert notice["status"] == "delivered"
    assert {c["channel"] for c in notice["channels"]} == {"pagerduty", "slack"}
    timer(service)
    deliver(service)
    assert len(pagerduty.events) == 2  # once


def test_a_resolve_waits_for_its_trigger_still_being_retried(
        service: Service, clock: FakeClock, pagerduty: PagerDutySink) -> None:
    pagerduty.set_responses([503])
    alert_in(service, firing(T0, labels={"service": "not-a-target"}))
    clock.advance(minutes=10)
    timer(service)
    deliver(service)  # the page gets a 503: retry in 1 s
    alert_in(service, resolved(T0))
    timer(service)
    deliver(service)  # the resolve must not overtake it
    assert [e["event_action"] for e in pagerduty.events] == []
    clock.advance(seconds=2)
    deliver(service)
    assert [e["event_action"] for e in pagerduty.events] == ["trigger", "resolve"]


def test_a_regression_that_reopens_the_incident_is_announced_afresh(
        service: Service) -> None:
    alert_in(service, firing(T0))
    run_pending(service)  # fixed
    alert_in(service, resolved(T0))
    alert_in(service, firing(T0.replace(minute=3)))  # back inside the stability window
    assert service.store.incident(1)["reopened"] == 1
    run_pending(service)
    assert [n["dedup_key"] for n in rows(service, "info")] == [
        key(service, "1/info/acting"), key(service, "1/info/fixed"),
        key(service, "1.1/info/acting"), key(service, "1.1/info/fixed")]


# -- Claim: a human takes over --------------------------------------------------------------


def test_claim_cancels_pending_executions_and_stops_the_timers(
        service: Service, clock: FakeClock, pagerduty: PagerDutySink,
        runtime: FakeRuntime) -> None:
    client = create_app(service).test_client()
    alert_in(service, firing(T0))
    (pending,) = service.store.executions_in_state("pending")
    answer = client.post("/api/v1/incidents/1/claim", json={"by": "alice"}, headers=AUTH)
    assert answer.status_code == 200
    assert answer.get_json()["cancelled_executions"] == [pending["id"]]
    assert service.store.executions_in_state("pending") == []
    assert service.store.incident(1)["claimed_by"] == "alice"
    clock.advance(hours=1)
    assert timer(service) is None  # no timer left for a claimed incident
    deliver(service)
    assert pagerduty.requests == [] and runtime.calls == []


def test_claim_during_a_run_skips_the_remaining_fix_steps(
        service: Service, runtime: FakeRuntime) -> None:
    def claim_while_diagnosing(action: str) -> None:
        if action == "docker.logs" and service.escalation is not None:
            service.escalation.claim(1, "bob")

    runtime.on_call = claim_while_diagnosing
    alert_in(service, firing(T0))
    run_pending(service)
    (execution,) = service.store.executions()
    fixes = {s["id"]: s["status"] for s in execution["steps"] if s["phase"] == "fix"}
    assert fixes == {"restore_model": "skipped", "restart": "skipped"}
    assert {s["note"] for s in execution["steps"] if s["phase"] == "fix"} == {
        "incident claimed by bob: remaining fix steps skipped"}
    assert "docker.copy" not in runtime.actions() and "docker.restart" not in runtime.actions()
    assert [n["dedup_key"] for n in rows(service)] == []  # claimed: Remediator stays quiet


def test_claim_api_answers_400_404_and_409(client_service: tuple[FlaskClient, Service]
                                           ) -> None:
    client, service = client_service
    alert_in(service, firing(T0))
    url = "/api/v1/incidents/{}/claim"
    assert client.post(url.format(1), json={}, headers=AUTH).status_code == 400
    assert client.post(url.format(99), json={"by": "a"}, headers=AUTH).status_code == 404
    assert client.post(url.format(1), json={"by": "alice"}, headers=AUTH).status_code == 200
    again = client.post(url.format(1), json={"by": "alice"}, headers=AUTH)
    assert again.status_code == 200 and again.get_json()["already_claimed"] is True
    taken = client.post(url.format(1), json={"by": "bob"}, headers=AUTH)
    assert taken.status_code == 409 and "alice" in taken.get_json()["error"]
    assert client.post(url.format(1), json={"by": "x"}).status_code == 401


@pytest.fixture
def client_service(service: Service) -> tuple[FlaskClient, Service]:
    return create_app(service).test_client(), service


def test_claim_command_takes_over_from_the_shell(tmp_path: Path, service: Service) -> None:
    alert_in(service, firing(T0))
    db = str(tmp_path / "remediator.db")
    result = CliRunner().invoke(main, ["claim", "1", "--db", db, "--by", "carol"])
    assert result.exit_code == 0, result.output
    assert "claimed by carol" in result.output and "cancelled pending executions: 1" in (
        result.output)
    other = CliRunner().invoke(main, ["claim", "1", "--db", db, "--by", "dave"])
    assert other.exit_code == 1 and "already claimed by carol" in other.output
    missing = CliRunner().invoke(main, ["claim", "7", "--db", db])
    assert missing.exit_code == 2 and "no incident 7" in missing.output


# -- API and metrics ------------------------------------------------------------------------


def test_notifications_api_lists_newest_first_with_secrets_masked(
        client_service: tuple[FlaskClient, Service], slack: HttpSink) -> None:
    client, service = client_service
    slack.set_responses([(400, {}, f"bad hook {slack.url}")])  # an endpoint echoing its URL
    alert_in(service, firing(T0))
    run_pending(service)
    deliver(service)
    items = client.get("/api/v1/notifications", headers=AUTH).get_json()["items"]
    assert [n["dedup_key"].rsplit("/", 1)[1] for n in items] == ["fixed", "acting"]
    failed = next(c for c in items[1]["channels"] if c["channel"] == "slack")
    assert failed["status"] == "failed" and "400" in failed["last_error"]
    assert "/services/T0/B0/secret" not in str(items)
    assert len(client.get("/api/v1/notifications?limit=1", headers=AUTH).get_json()[
        "items"]) == 1
    assert client.get("/api/v1/notifications").status_code == 401


def test_metrics_count_deliveries_escalations_and_the_outbox_depth(
        client_service: tuple[FlaskClient, Service], clock: FakeClock) -> None:
    client, service = client_service
    alert_in(service, firing(T0, labels={"service": "not-a-target"}))
    clock.advance(minutes=10)
    timer(service)
    registry = service.metrics.registry
    assert registry.get_sample_value("remediator_outbox_depth") == 5.0  # 5 emergency channels
    deliver(service)
    assert registry.get_sample_value("remediator_outbox_depth") == 0.0
    assert registry.get_sample_value(
        "remediator_notifications_total", {"channel": "pagerduty", "outcome": "delivered"}
    ) == 1.0
    assert registry.get_sample_value(
        "remediator_notifications_total", {"channel": "email", "outcome": "not_configured"}
    ) == 1.0
    text = client.get("/metrics").get_data(as_text=True)
    assert 'remediator_escalations_total{rule="emergency-down-more-than-10-minutes",' \
           'team="emergency"} 1.0' in text
