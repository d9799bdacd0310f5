"""``remediator notify-test TEAM`` against local sinks, through click's CliRunner."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from remediator.core.escalation_load import load_escalation_policy
from remediator.service.cli_notify import notify_test
from tests.support import HttpSink, PagerDutySink

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "config" / "escalation.yml"
ROUTING_KEY = "e93facc04764012d7bfb002500d5d1a6"


@pytest.fixture(autouse=True)
def no_channel_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # The developer's own SLACK_WEBHOOK_URL must not receive test messages.
    for name in load_escalation_policy(CONFIG).env_vars():
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def pagerduty() -> Iterator[PagerDutySink]:
    with PagerDutySink() as sink:
        yield sink


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(notify_test, [*args, "--config", str(CONFIG)], env=env)
    return result.exit_code, result.stdout, result.stderr


def test_sends_through_pagerduty_and_reports_every_channel(pagerduty: PagerDutySink) -> None:
    code, out, _ = run("emergency", env={"PAGERDUTY_ROUTING_KEY": ROUTING_KEY,
                                         "PAGERDUTY_EVENTS_URL": pagerduty.url})
    assert out.splitlines() == [
        "pagerduty: delivered",
        "slack: not configured (SLACK_WEBHOOK_URL unset)",
        "teams: not configured (TEAMS_WEBHOOK_URL unset)",
        "email: not configured (SMTP_HOST, SMTP_FROM, SMTP_TO unset)",
        "webhook: not configured (ESCALATION_WEBHOOK_URL unset)",
    ]
    assert code == 0
    assert pagerduty.verdicts == [202, 202]  # a test trigger, then its resolve
    trigger, resolve = pagerduty.events
    assert trigger["payload"]["severity"] == "info"
    assert trigger["payload"]["summary"] == "[TEST] Remediator test notification for emergency"
    assert resolve == {"routing_key": ROUTING_KEY, "event_action": "resolve",
                       "dedup_key": trigger["dedup_key"]}


def test_pagerduty_not_configured_is_not_a_failure() -> None:
    code, out, err = run("emergency")
    assert "pagerduty: not configured (PAGERDUTY_ROUTING_KEY unset)" in out.splitlines()
    assert code == 0
    assert "no channel of emergency is configured" in err


def test_a_failing_configured_channel_exits_non_zero(pagerduty: PagerDutySink) -> None:
    with HttpSink(path="/services/T0/B0/XXXX") as slack:
        slack.set_responses([(404, {}, "channel_not_found")])
        code, out, _ = run("ml-team-lead", env={"SLACK_WEBHOOK_URL": slack.url})
    assert "slack: failed: HTTP 404: channel_not_found" in out.splitlines()
    assert code == 1


def test_unknown_team_exits_2() -> None:
    code, _, err = run("oncall")
    assert code == 2
    assert "unknown team 'oncall'" in err
    assert "ml-team-lead, infrastructure, emergency" in err


def test_invalid_policy_exits_1_naming_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "escalation.yml"
    bad.write_text("teams: {x: {channels: [{type: fax}]}}\n")
    result = CliRunner().invoke(notify_test, ["x", "--config", str(bad)])
    assert result.exit_code == 1
    assert f"{bad}:1: teams.x.channels[0].type: unknown channel type 'fax'" in result.stderr


def test_every_channel_of_a_team_at_once(pagerduty: PagerDutySink) -> None:
    with HttpSink(path="/hook") as hook, HttpSink(path="/services/T/B/X") as slack:
        env = {"PAGERDUTY_ROUTING_KEY": ROUTING_KEY, "PAGERDUTY_EVENTS_URL": pagerduty.url,
               "SLACK_WEBHOOK_URL": slack.url, "TEAMS_WEBHOOK_URL": hook.url,
               "ESCALATION_WEBHOOK_URL": hook.url}
        code, out, _ = run("emergency", env=env)
        assert [line.split(":")[1].strip() for line in out.splitlines()] == [
            "delivered", "delivered", "delivered", "not configured (SMTP_HOST, SMTP_FROM, "
            "SMTP_TO unset)", "delivered"]
        assert code == 0
        assert [r.json().get("type", r.json().get("kind")) for r in hook.requests] == [
            "message", "test"]
        assert slack.requests[0].json()["text"].startswith(":test_tube: [TEST]")
