"""config/escalation.yml: the shipped file, and every way a policy file can be wrong.

Each bad file must fail with a ConfigError naming the file and the key, as STYLE.md asks.
"""

from __future__ import annotations

import copy
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from remediator.core.escalation_channels import DEFAULT_PAGERDUTY_EVENTS_URL, ValueRef
from remediator.core.escalation_facts import FACTS
from remediator.core.escalation_load import load_escalation_policy
from remediator.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "config" / "escalation.yml"

VALID: dict[str, Any] = {
    "version": 1,
    "channels": {"slack": {"type": "slack", "webhook_url": {"env": "SLACK_WEBHOOK_URL"}}},
    "teams": {"emergency": {"channels": ["slack"]}},
    "rules": [{"name": "down", "team": "emergency", "level": "page",
               "when": [{"fact": "down_for", "ge": "10m"}]}],
}


def write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "escalation.yml"
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return path


def broken(tmp_path: Path, change: Any) -> str:
    """Apply ``change`` to a copy of VALID, load it, and return the ConfigError text."""
    data = copy.deepcopy(VALID)
    change(data)
    path = write(tmp_path, data)
    with pytest.raises(ConfigError) as caught:
        load_escalation_policy(path)
    message = str(caught.value)
    assert str(path) in message
    return message


# ------------------------------------------------------------------ shipped file


def test_shipped_policy_has_the_runbook_teams() -> None:
    policy = load_escalation_policy(SHIPPED)
    assert set(policy.teams) == {"ml-team-lead", "infrastructure", "emergency"}
    assert {rule.team for rule in policy.rules} == set(policy.teams)


def test_shipped_policy_reads_the_documented_environment_variables() -> None:
    policy = load_escalation_policy(SHIPPED)
    assert policy.env_vars() == {
        "SLACK_WEBHOOK_URL", "PAGERDUTY_ROUTING_KEY", "PAGERDUTY_EVENTS_URL",
        "TEAMS_WEBHOOK_URL", "ESCALATION_WEBHOOK_URL", "SMTP_HOST", "SMTP_PORT", "SMTP_USER",
        "SMTP_PASSWORD", "SMTP_FROM", "SMTP_TO",
    }


def test_shipped_policy_pages_only_through_pagerduty() -> None:
    emergency = load_escalation_policy(SHIPPED).teams["emergency"]
    pagerduty = next(c for c in emergency.channels if c.type == "pagerduty")
    assert pagerduty.levels == {"page"}
    assert pagerduty.settings["events_url"] == ValueRef(
        env="PAGERDUTY_EVENTS_URL", default=DEFAULT_PAGERDUTY_EVENTS_URL)


def test_every_team_reaches_every_channel_type_it_lists() -> None:
    policy = load_escalation_policy(SHIPPED)
    types = {c.type for team in policy.teams.values() for c in team.channels}
    assert types == {"slack", "pagerduty", "teams", "webhook", "email"}


def test_channel_description_never_shows_a_value() -> None:
    team = load_escalation_policy(SHIPPED).teams["emergency"]
    described = [channel.describe() for channel in team.channels]
    assert described[0]["settings"] == {
        "routing_key": "env:PAGERDUTY_ROUTING_KEY", "events_url": "env:PAGERDUTY_EVENTS_URL"}


# -------------------------------------------------------------------- bad files


def test_unknown_team_in_a_rule_names_file_and_key(tmp_path: Path) -> None:
    message = broken(tmp_path, lambda d: d["rules"][0].update(team="oncall"))
    assert "rules[0].team" in message
    assert "unknown team 'oncall'" in message


def test_unknown_channel_type_names_file_and_key(tmp_path: Path) -> None:
    message = broken(tmp_path, lambda d: d["channels"]["slack"].update(type="carrier-pigeon"))
    assert "channels.slack.type" in message
    assert "unknown channel type 'carrier-pigeon'" in message


def test_unknown_fact_variable_names_file_and_key(tmp_path: Path) -> None:
    message = broken(tmp_path, lambda d: d["rules"][0]["when"][0].update(fact="downtime"))
    assert "rules[0].when[0].fact" in message
    assert "unknown fact 'downtime'" in message


def test_bad_environment_variable_name(tmp_path: Path) -> None:
    message = broken(tmp_path, lambda d: d["channels"]["slack"].update(
        webhook_url={"env": "SLACK-WEBHOOK"}))
    assert "channels.slack.webhook_url.env" in message


def test_unknown_channel_reference(tmp_path: Path) -> None:
    message = broken(tmp_path, lambda d: d["teams"]["emergency"].update(channels=["sms"]))
    assert "teams.emergency.channels[0]" in message
    assert "'sms'" in message


def test_two_channels_of_one_team_with_one_name_are_refused(tmp_path: Path) -> None:
    # An inline channel is named after its type: this team lists "slack" twice, and only
    # one delivery per notification and channel name can be stored.
    message = broken(tmp_path, lambda d: d["teams"]["emergency"].update(
        channels=["slack", {"type": "slack", "webhook_url": {"env": "SLACK_ONCALL"}}]))
    assert "teams.emergency.channels[1]" in message
    assert "two channels named 'slack'" in message
    assert "name:" in message


def test_an_inline_channel_with_its_own_name_may_share_a_type(tmp_path: Path) -> None:
    data = copy.deepcopy(VALID)
    data["teams"]["emergency"]["channels"] = [
        "slack", {"type": "slack", "name": "slack-oncall", "webhook_url": {"env": "SLACK_ONCALL"}}]
    team = load_escalation_policy(write(tmp_path, data)).teams["emergency"]
    assert [c.name for c in team.channels] == ["slack", "slack-oncall"]


def test_secret_written_in_the_file_is_refused(tmp_path: Path) -> None:
    message = broken(tmp_path, lambda d: d["channels"]["slack"].update(
        webhook_url="https://hooks.slack.com/services/T0/B0/XXXX"))
    assert "channels.slack.webhook_url" in message
    assert "XXXX" not in message  # the error must not echo the secret


def test_unknown_setting_is_a_typo(tmp_path: Path) -> None:
    message = broken(tmp_path, lambda d: d["channels"]["slack"].update(webhook={"env": "X"}))
    assert "channels.slack.webhook" in message


def test_missing_required_setting(tmp_path: Path) -> None:
    message = broken(tmp_path, lambda d: d["channels"].update(pd={"type": "pagerduty"}))
    assert "channels.pd.routing_key" in message


@pytest.mark.parametrize(("condition", "key"), [
    ({"fact": "down_for", "eq": "10m"}, "rules[0].when[0]"),          # wrong operator
    ({"fact": "down_for", "ge": "ten minutes"}, "rules[0].when[0].ge"),
    ({"fact": "failing_model_count", "ge": "two"}, "rules[0].when[0].ge"),
    ({"fact": "file_restored", "eq": "yes"}, "rules[0].when[0].eq"),
    ({"fact": "scenario", "in": []}, "rules[0].when[0].in"),
    ({"fact": "scenario", "eq": "cuda", "ne": "oom"}, "rules[0].when[0]"),
])
def test_bad_condition(tmp_path: Path, condition: dict[str, Any], key: str) -> None:
    message = broken(tmp_path, lambda d: d["rules"][0].update(when=[condition]))
    assert f"{key}:" in message


@pytest.mark.parametrize(("field", "value"), [
    ("level", "critical"), ("severity", "fatal"), ("once_per", "day"), ("when", []),
    ("team", ["emergency"]),  # was a TypeError (unhashable list), not a ConfigError
])
def test_bad_rule_setting(tmp_path: Path, field: str, value: object) -> None:
    message = broken(tmp_path, lambda d: d["rules"][0].update({field: value}))
    assert f"rules[0].{field}" in message


def test_duplicate_rule_names(tmp_path: Path) -> None:
    message = broken(tmp_path, lambda d: d["rules"].append(copy.deepcopy(d["rules"][0])))
    assert "used twice" in message


def test_unknown_top_level_key(tmp_path: Path) -> None:
    assert "ruls" in broken(tmp_path, lambda d: d.update(ruls=[]))


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_escalation_policy(tmp_path / "nope.yml")


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "teams:\n  emergency: [unclosed\n")
    with pytest.raises(ConfigError, match=r"escalation\.yml:3: invalid YAML"):
        load_escalation_policy(path)


def test_file_reference_is_relative_to_the_policy(tmp_path: Path) -> None:
    data = copy.deepcopy(VALID)
    data["channels"]["slack"]["webhook_url"] = {"file": "secrets/slack"}
    policy = load_escalation_policy(write(tmp_path, data))
    ref = policy.teams["emergency"].channels[0].settings["webhook_url"]
    assert ref.file == str(tmp_path.resolve() / "secrets" / "slack")


def test_yaml_anchors_under_x_keys_are_allowed(tmp_path: Path) -> None:
    text = SHIPPED.read_text() + "\nx-notes: {owner: ml}\n"
    assert load_escalation_policy(write(tmp_path, text)).teams


def test_facts_table_matches_the_dataclass() -> None:
    from dataclasses import fields

    from remediator.core.escalation_facts import IncidentFacts

    names = {f.name for f in fields(IncidentFacts)}
    derived = {"down_for", "fallback_for", "failing_model_count", "affected_service_count"}
    assert set(FACTS) - derived <= names


def test_shipped_policy_retries_a_notification_for_an_hour() -> None:
    assert load_escalation_policy(SHIPPED).give_up_after == timedelta(hours=1)


def test_give_up_after_must_be_a_positive_duration(tmp_path: Path) -> None:
    message = broken(tmp_path, lambda d: d.update(give_up_after="0s"))
    assert "give_up_after" in message


@pytest.mark.parametrize(("condition", "key"), [
    ("{fact: labels.gpu, eq: yes}", "rules[0].when[0].eq"),
    ("{fact: alertname, ne: off}", "rules[0].when[0].ne"),
    ("{fact: scenario, in: [out_of_memory, on]}", "rules[0].when[0].in[1]"),
])
def test_a_yaml_boolean_where_a_string_is_compared_must_be_quoted(
        tmp_path: Path, condition: str, key: str) -> None:
    # YAML 1.1 reads unquoted yes/on/off as booleans: `eq: yes` used to compare the label
    # with 'True' and never match an alert labelled gpu=yes.
    path = write(tmp_path, f"""
channels: {{slack: {{type: slack, webhook_url: {{env: SLACK_WEBHOOK_URL}}}}}}
teams: {{emergency: {{channels: [slack]}}}}
rules: [{{name: gpu-host, team: emergency, level: notify, when: [{condition}]}}]
""")
    with pytest.raises(ConfigError) as caught:
        load_escalation_policy(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:4: rule 'gpu-host': {key}: ")
    assert "boolean" in message and "quote it" in message


def test_a_quoted_yes_is_a_string_condition(tmp_path: Path) -> None:
    data = copy.deepcopy(VALID)
    data["rules"][0]["when"] = [{"fact": "labels.gpu", "eq": "yes"}]  # safe_dump quotes it
    (condition,) = load_escalation_policy(write(tmp_path, data)).rules[0].conditions
    assert condition.operand == "yes"


def test_a_rule_whose_team_has_no_channel_for_its_level_is_refused(tmp_path: Path) -> None:
    # The notification could only ever be stored as failed: nobody would be told.
    message = broken(tmp_path, lambda d: d["channels"]["slack"].update(levels=["page"])
                     or d["rules"][0].update(level="notify"))
    assert "rule 'down': rules[0].level:" in message
    assert "no channel of team 'emergency' takes notify notifications" in message
    assert "slack [page]" in message
