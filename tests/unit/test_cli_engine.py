"""`remediator validate` and `remediator run`, through click's CliRunner and a fake runtime."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from remediator.service.cli_engine import run, validate
from tests.support.fakes import FakeRuntime, model_app

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = Path(__file__).parent / "playbooks"
CONFIG = ROOT / "config" / "remediator.yml"
ALERT = {
    "version": "4", "status": "firing", "receiver": "remediator",
    "alerts": [{
        "status": "firing", "startsAt": "2026-11-29T11:27:02.749133669Z",
        "endsAt": "0001-01-01T00:00:00Z", "fingerprint": "0023b7e32bfe951f",
        "labels": {"alertname": "ModelLoadFailure", "service": "app-prod",
                   "instance": "app-prod:8080"},
        "annotations": {"summary": "Model failed to load"},
    }],
}


@pytest.fixture
def alert_file(tmp_path: Path) -> Path:
    path = tmp_path / "alert.json"
    path.write_text(json.dumps(ALERT))
    return path


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory laid out like the repository: playbooks/ and config/."""
    shutil.copytree(ROOT / "playbooks", tmp_path / "playbooks")
    (tmp_path / "config").mkdir()
    shutil.copy(CONFIG, tmp_path / "config" / "remediator.yml")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def invoke(command: Any, args: list[str], runtime: FakeRuntime | None = None) -> Any:
    return CliRunner().invoke(command, args, obj={"runtime": runtime})


# -- validate -----------------------------------------------------------------------------

def test_validate_checks_playbooks_and_config_by_default(project: Path) -> None:
    result = invoke(validate, [])
    assert result.exit_code == 0, result.output
    assert result.output == "ok: playbooks, config/remediator.yml\n"


def test_validate_prints_file_line_field_message_and_exits_1(project: Path) -> None:
    shutil.copy(EXAMPLES / "bad_schema.yml", project / "playbooks" / "bad_schema.yml")
    result = invoke(validate, [])
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert "playbooks/bad_schema.yml:11: steps[1].action: unknown action 'docker.nuke' " \
           "(did you mean 'docker.update'?); known: docker.inspect, docker.logs, docker.exec, " \
           "docker.stats, docker.restart, docker.update, docker.recreate, docker.copy, " \
           "docker.read_file, docker.put_file, http.check, prometheus.query, " \
           "diagnose.classify, wait, assert, notify" in lines
    assert len(lines) == 9


def test_validate_checks_team_names_against_the_escalation_policy(project: Path) -> None:
    shutil.copy(ROOT / "config" / "escalation.yml", project / "config" / "escalation.yml")
    assert invoke(validate, []).output == (
        "ok: playbooks, config/remediator.yml, config/escalation.yml\n")
    playbook = project / "playbooks" / "model_load_failure.yml"
    playbook.write_text(playbook.read_text().replace("team: emergency", "team: emergncy"))
    result = invoke(validate, [])
    assert result.exit_code == 1
    assert "escalate.team: no team 'emergncy' in the escalation policy" in result.output


def test_validate_uses_the_config_for_target_names(project: Path) -> None:
    result = invoke(validate, [str(EXAMPLES / "unknown_target.yml")])
    assert result.exit_code == 1
    assert ":3: target: no target 'app-prd' in the config" in result.output


def test_validate_checks_config_variants_and_the_given_config_as_configs(project: Path) -> None:
    compose = ROOT / "config" / "remediator.compose.yml"
    assert invoke(validate, ["playbooks", str(compose)]).exit_code == 0
    custom = project / "prod-settings.yml"  # any name, when handed in with --config
    custom.write_text(compose.read_text())
    result = invoke(validate, ["playbooks", "--config", str(custom)])
    assert result.exit_code == 0, result.output
    custom.write_text(compose.read_text().replace("max_runs_per_hour: 5", "max_runs_per_hour: x"))
    result = invoke(validate, ["playbooks", "--config", str(custom)])
    assert result.exit_code == 1
    assert result.output.startswith(f"{custom}:") and "max_runs_per_hour" in result.output
    assert "steps: is required" not in result.output  # not mistaken for a playbook


def test_validate_reports_a_missing_path(project: Path) -> None:
    result = invoke(validate, ["nope.yml"])
    assert result.exit_code == 1 and "nope.yml:0: no such file or directory" in result.output


# -- run ----------------------------------------------------------------------------------

def test_run_prints_each_step_and_the_outcome(alert_file: Path) -> None:
    runtime = model_app()
    result = invoke(run, [str(EXAMPLES / "restart_until_healthy.yml"), "--alert",
                          str(alert_file), "--config", str(CONFIG)], runtime)
    assert result.exit_code == 0, result.output
    assert runtime.actions() == ["docker.logs", "docker.restart", "http.check"]
    out = result.output
    assert "-> [diagnose] logs (docker.logs)" in out
    assert "ok" in out and "restart: docker.restart done" in out
    assert "outcome: success" in out and "scenario: file_missing_or_corrupted" in out


def test_run_dry_run_mutates_nothing(alert_file: Path) -> None:
    runtime = model_app()
    result = invoke(run, [str(EXAMPLES / "restart_until_healthy.yml"), "--alert",
                          str(alert_file), "--config", str(CONFIG), "--dry-run"], runtime)
    assert result.exit_code == 0
    assert "docker.restart" not in runtime.actions()
    assert "skipped_dry_run" in result.output and "outcome: dry_run" in result.output


def test_run_json_prints_a_stored_shape(alert_file: Path) -> None:
    result = invoke(run, [str(ROOT / "playbooks" / "model_load_failure.yml"), "--alert",
                          str(alert_file), "--config", str(CONFIG), "--json"], model_app())
    data = json.loads(result.stdout)
    assert data["outcome"] == "success" and data["target"] == "app-prod"
    assert data["incident_key"] == "0023b7e32bfe951f@2026-11-29T11:27:02.749Z"


def test_run_in_observe_mode_is_a_dry_run(alert_file: Path, tmp_path: Path) -> None:
    config = tmp_path / "remediator.yml"
    config.write_text(CONFIG.read_text().replace("mode: act", "mode: observe"))
    runtime = model_app()
    result = invoke(run, [str(EXAMPLES / "restart_until_healthy.yml"), "--alert",
                          str(alert_file), "--config", str(config)], runtime)
    assert "docker.restart" not in runtime.actions() and "outcome: dry_run" in result.output


def test_run_refuses_an_alert_that_matches_no_target(tmp_path: Path) -> None:
    alert = json.loads(json.dumps(ALERT))
    alert["alerts"][0]["labels"]["service"] = "billing"
    path = tmp_path / "alert.json"
    path.write_text(json.dumps(alert))
    runtime = model_app()
    result = invoke(run, [str(EXAMPLES / "restart_until_healthy.yml"), "--alert", str(path),
                          "--config", str(CONFIG)], runtime)
    assert result.exit_code == 2 and runtime.calls == []
    assert "no target in" in result.output and "nothing done" in result.output


def test_run_reports_bad_input_without_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "alert.json"
    path.write_text("{not json")
    result = invoke(run, [str(EXAMPLES / "restart_until_healthy.yml"), "--alert", str(path),
                          "--config", str(CONFIG)], model_app())
    assert result.exit_code == 2
    assert "error:" in result.output and "cannot read JSON" in result.output
    result = invoke(run, [str(EXAMPLES / "bad_schema.yml"), "--alert", str(path),
                          "--config", str(CONFIG)], model_app())
    assert result.exit_code == 2 and "bad_schema.yml:11: steps[1].action" in result.output


def test_run_accepts_a_single_alert_object(tmp_path: Path) -> None:
    path = tmp_path / "one.json"
    path.write_text(json.dumps(ALERT["alerts"][0]))
    result = invoke(run, [str(EXAMPLES / "restart_until_healthy.yml"), "--alert", str(path),
                          "--config", str(CONFIG)], model_app())
    assert result.exit_code == 0, result.output


def test_a_failed_run_exits_1(alert_file: Path) -> None:
    broken = model_app(docker__restart={"ok": False, "output": "container is dead"})
    result = invoke(run, [str(EXAMPLES / "restart_until_healthy.yml"), "--alert",
                          str(alert_file), "--config", str(CONFIG)], broken)
    assert result.exit_code == 1
    assert "outcome: failed (step 'restart' (docker.restart) failed: container is dead)" \
        in result.output


BROKEN_POLICY = """\
channels:
  slack: {type: slack, webhook_url: {env: SLACK_WEBHOOK_URL}}
  pd:
    type: pagerduty
    routing_kee: {env: PD_KEY}
teams:
  emergency: {channels: [slack]}
rules:
  - name: down
    team: emergency
    level: critical
    when:
      - {fact: down_for, ge: 10m}
      - {fact: downtime, ge: 10m}
"""


def test_validate_lists_every_problem_of_the_escalation_policy_with_its_line(
        project: Path) -> None:
    (project / "config" / "escalation.yml").write_text(BROKEN_POLICY)
    result = invoke(validate, [])
    assert result.exit_code == 1
    lines = [line for line in result.stdout.splitlines() if "escalation.yml" in line]
    where = [
        "config/escalation.yml:4: channels.pd.routing_key: required for a pagerduty channel",
        "config/escalation.yml:5: channels.pd.routing_kee: unknown key (did you mean "
        "'routing_key'?)",
        "config/escalation.yml:11: rule 'down': rules[0].level: expected one of page, notify",
        "config/escalation.yml:14: rule 'down': rules[0].when[1].fact: unknown fact "
        "'downtime'",
    ]
    assert len(lines) == len(where), result.stdout
    for line, start in zip(lines, where, strict=True):
        assert line.startswith(start), result.stdout
