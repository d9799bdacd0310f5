"""build_channels: settings from environment variables and files; unset means skipped."""

from __future__ import annotations

from pathlib import Path

import pytest

from remediator.adapters.notifiers import (
    Channel,
    EmailNotifier,
    Message,
    PagerDutyNotifier,
    attempt_delivery,
    build_channels,
)
from remediator.core.escalation_eval import EscalationPolicy
from remediator.core.escalation_load import load_escalation_policy, parse_escalation_policy

ROOT = Path(__file__).resolve().parents[2]

FULL_ENV = {
    "SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T0/B0/XXXX",
    "PAGERDUTY_ROUTING_KEY": "e93facc04764012d7bfb002500d5d1a6",
    "TEAMS_WEBHOOK_URL": "https://prod.logic.azure.com/workflows/1/invoke?sig=S",
    "ESCALATION_WEBHOOK_URL": "https://hooks.example.com/remediator",
    "SMTP_HOST": "smtp.example.com", "SMTP_PORT": "587", "SMTP_USER": "remediator",
    "SMTP_PASSWORD": "pw-123456", "SMTP_FROM": "remediator@example.com",
    "SMTP_TO": "a@example.com, b@example.com",
}

MESSAGE = Message(kind="trigger", team="emergency", level="page", title="t", text="x",
                  incident_id="inc-1", dedup_key="k")


@pytest.fixture(scope="module")
def policy() -> EscalationPolicy:
    return load_escalation_policy(ROOT / "config" / "escalation.yml")


def by_name(channels: list[Channel]) -> dict[str, Channel]:
    return {channel.name: channel for channel in channels}


def test_every_channel_configured_from_the_environment(policy: EscalationPolicy) -> None:
    channels = by_name(build_channels(policy.teams["emergency"], FULL_ENV))
    assert list(channels) == ["pagerduty", "slack", "teams", "email", "webhook"]
    assert all(channel.configured for channel in channels.values())


def test_unset_variables_mean_not_configured_and_skipped(policy: EscalationPolicy) -> None:
    env = {"SLACK_WEBHOOK_URL": FULL_ENV["SLACK_WEBHOOK_URL"], "SMTP_HOST": "smtp.example.com"}
    channels = by_name(build_channels(policy.teams["emergency"], env))
    assert channels["slack"].configured
    assert channels["pagerduty"].skipped_reason == "PAGERDUTY_ROUTING_KEY unset"
    assert channels["email"].skipped_reason == "SMTP_FROM, SMTP_TO unset"
    assert attempt_delivery(channels["teams"], MESSAGE).status == "not_configured"


def test_empty_variable_counts_as_unset(policy: EscalationPolicy) -> None:
    channels = by_name(build_channels(policy.teams["emergency"], {"SLACK_WEBHOOK_URL": " "}))
    assert channels["slack"].skipped_reason == "SLACK_WEBHOOK_URL unset"


def test_pagerduty_events_url_default_and_override(policy: EscalationPolicy) -> None:
    env = dict(FULL_ENV)
    default = by_name(build_channels(policy.teams["emergency"], env))["pagerduty"].notifier
    assert isinstance(default, PagerDutyNotifier)
    assert default._events_url == "https://events.pagerduty.com/v2/enqueue"
    env["PAGERDUTY_EVENTS_URL"] = "http://127.0.0.1:9999/v2/enqueue"
    custom = by_name(build_channels(policy.teams["emergency"], env))["pagerduty"].notifier
    assert isinstance(custom, PagerDutyNotifier)
    assert custom._events_url == "http://127.0.0.1:9999/v2/enqueue"


def test_smtp_settings_from_the_environment(policy: EscalationPolicy) -> None:
    email = by_name(build_channels(policy.teams["emergency"], FULL_ENV))["email"].notifier
    assert isinstance(email, EmailNotifier)
    s = email.settings
    assert (s.host, s.port, s.username, s.password, s.tls) == (
        "smtp.example.com", 587, "remediator", "pw-123456", "auto")
    assert s.recipients == ("a@example.com", "b@example.com")


def test_wrong_value_fails_loudly_instead_of_being_skipped(policy: EscalationPolicy) -> None:
    env = {**FULL_ENV, "SMTP_PORT": "smtp", "SLACK_WEBHOOK_URL": "hooks.slack.com/x"}
    channels = by_name(build_channels(policy.teams["emergency"], env))
    assert channels["email"].configured
    assert attempt_delivery(channels["email"], MESSAGE).reason == (
        "email: port must be a number, got 'smtp'")
    slack = attempt_delivery(channels["slack"], MESSAGE)
    assert (slack.status, slack.reason) == ("failed", "slack: webhook_url is not an http(s) URL")
    assert "hooks.slack.com/x" not in slack.reason


def test_secret_from_a_file(tmp_path: Path) -> None:
    (tmp_path / "slack_url").write_text("https://hooks.slack.com/services/T/B/FROMFILE\n")
    policy = parse_escalation_policy({
        "teams": {"ops": {"channels": [{"type": "slack",
                                        "webhook_url": {"file": "slack_url"}}]}},
        "rules": [],
    }, base_dir=tmp_path)
    [channel] = build_channels(policy.teams["ops"], {})
    assert channel.configured
    assert channel.notifier is not None
    assert channel.notifier._url == (  # type: ignore[attr-defined]
        "https://hooks.slack.com/services/T/B/FROMFILE")


def test_missing_secret_file_is_not_configured(tmp_path: Path) -> None:
    policy = parse_escalation_policy({
        "teams": {"ops": {"channels": [{"type": "pagerduty",
                                        "routing_key": {"file": "nope"}}]}},
        "rules": [],
    }, base_dir=tmp_path)
    [channel] = build_channels(policy.teams["ops"], {})
    assert channel.skipped_reason == f"file {tmp_path / 'nope'} unreadable or empty"


def test_describe_masks_everything(policy: EscalationPolicy) -> None:
    described = [c.describe() for c in build_channels(policy.teams["emergency"], FULL_ENV)]
    text = repr(described)
    for secret in FULL_ENV.values():
        if secret not in ("587", "remediator", "smtp.example.com"):
            assert secret not in text
    assert described[0] == {
        "name": "pagerduty", "type": "pagerduty", "levels": ["page"],
        "settings": {"routing_key": "env:PAGERDUTY_ROUTING_KEY",
                     "events_url": "env:PAGERDUTY_EVENTS_URL"},
        "configured": True, "skipped_reason": "",
    }
