"""Playbook schema and `validate`: every problem points at file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from remediator.core.alerts import parse_alert
from remediator.core.config import load_config
from remediator.core.playbook import (
    load_playbook,
    load_playbook_text,
    load_playbooks,
    select_playbook,
)
from remediator.core.playbook_model import OnFailure, Phase
from remediator.core.validate import validate_paths
from remediator.errors import PlaybookSchemaError

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = Path(__file__).parent / "playbooks"
CONFIG = ROOT / "config" / "remediator.yml"
TARGETS = load_config(CONFIG, env={}).targets


def problems_of(*paths: Path) -> list[tuple[int, str, str]]:
    return [(p.line, p.field, p.message) for p in validate_paths([*paths, CONFIG])]


def test_shipped_playbooks_and_config_are_valid() -> None:
    assert validate_paths([ROOT / "playbooks", CONFIG]) == []


def test_the_runbook_playbook_loads_with_its_phases() -> None:
    playbook = load_playbook(ROOT / "playbooks" / "model_load_failure.yml", TARGETS)
    phases = [step.phase for step in playbook.steps]
    assert phases == sorted(phases, key=[Phase.DIAGNOSE, Phase.FIX, Phase.VALIDATE].index)
    assert playbook.match == {"alertname": "ModelLoadFailure"}
    assert playbook.limits.timeout_s == 600
    assert {s.id for s in playbook.steps if s.mutating} == {
        "restore_model", "restore_fallback", "download_fallback", "download_model",
        "fix_ownership", "fix_mode",
        "raise_memory", "cuda_alloc_conf", "force_cpu", "convert_model", "use_converted",
        "use_converted_env",
        "rollback_image",
        "restore_config", "restore_image_config", "restart"}
    # Every mutating step may run again after a crash: each one is safe to repeat.
    assert all(s.idempotent for s in playbook.steps if s.mutating)
    # Diagnosis touches nothing: its one exec is declared read-only.
    assert not any(s.mutating for s in playbook.steps if s.phase is Phase.DIAGNOSE)


def test_a_valid_example_loads_into_the_model() -> None:
    playbook = load_playbook(EXAMPLES / "restart_until_healthy.yml", TARGETS)
    restart = playbook.step("restart")
    assert restart is not None and restart.idempotent and restart.mutating
    assert restart.on_failure is OnFailure.ABORT
    health = playbook.step("health")
    assert health is not None and health.timeout_s == 30.0
    assert health.args["expect"] == {"status": "healthy", "model_loaded": True}


def test_schema_errors_point_at_file_line_and_field() -> None:
    found = problems_of(EXAMPLES / "bad_schema.yml")
    expected = [
        (8, "steps[0].with.since", "expected a duration like '30s' or '10m', got '10x'"),
        (11, "steps[1].action", "unknown action 'docker.nuke'"),
        (16, "steps[2].with.cmd", "expected a YAML list, one argument per item"),
        (20, "steps[3].with.memory", "8g exceeds the max_memory 4g of target 'app-prod'"),
        (20, "steps[3].with.cpus", "4 is outside the range 0.5..2 of target 'app-prod'"),
        (25, "steps[4].with.cmd", "steps.health is not an earlier step"),
        (25, "steps[4].with.cmd", "steps.logs (docker.logs) has no output 'outptu'"),
        (29, "steps[5].with.path", "expected a path on the target's base_url"),
        (31, "steps[6].phase", "docker.restart changes the target, so it belongs in phase: fix"),
    ]
    assert len(found) == len(expected)
    for (line, field, message), (got_line, got_field, got_message) in zip(expected, found,
                                                                          strict=True):
        assert (got_line, got_field) == (line, field)
        assert got_message.startswith(message)


def test_a_problem_prints_like_a_compiler_message() -> None:
    problem = next(p for p in validate_paths([EXAMPLES / "bad_schema.yml"])
                   if p.field == "steps[1].action")
    assert str(problem).startswith(
        f"{EXAMPLES / 'bad_schema.yml'}:11: steps[1].action: unknown action 'docker.nuke'")


def test_a_sandbox_escape_in_a_playbook_is_refused_by_validate() -> None:
    found = problems_of(EXAMPLES / "sandbox_escape.yml")
    assert (9, "steps[0].with.cmd",
            "access to private attribute '__class__' is refused by the sandbox") in found


def test_duplicate_keys_and_broken_yaml_are_reported_with_lines() -> None:
    assert problems_of(EXAMPLES / "duplicate_key.yml") == [
        (8, "", "invalid YAML: duplicate key 'when' (first on line 7)")]
    [(line, field, message)] = problems_of(EXAMPLES / "broken_yaml.yml")
    assert (line, field) == (3, "") and message.startswith("invalid YAML")


def test_a_target_name_must_be_declared_in_the_config() -> None:
    assert problems_of(EXAMPLES / "unknown_target.yml") == [
        (3, "target", "no target 'app-prd' in the config (declared: app-prod) "
                      "(did you mean 'app-prod'?)")]


def test_team_names_are_checked_against_the_escalation_policy(tmp_path: Path) -> None:
    text = (ROOT / "playbooks" / "model_load_failure.yml").read_text()
    path = tmp_path / "typo.yml"
    path.write_text(text.replace("team: emergency", "team: emergncy"))
    policy = ROOT / "config" / "escalation.yml"
    found = [str(p) for p in validate_paths([path, CONFIG, policy])]
    assert len(found) == 1
    assert found[0].endswith("escalate.team: no team 'emergncy' in the escalation policy "
                             "(teams: emergency, infrastructure, ml-team-lead) "
                             "(did you mean 'emergency'?)")
    assert validate_paths([path, CONFIG]) == []  # without a policy, names are not checked


def test_missing_paths_are_problems_not_crashes(tmp_path: Path) -> None:
    [problem] = validate_paths([tmp_path / "nope.yml"])
    assert problem.message == "no such file or directory"


def test_load_playbook_raises_with_every_problem() -> None:
    with pytest.raises(PlaybookSchemaError) as caught:
        load_playbook(EXAMPLES / "bad_schema.yml", TARGETS)
    assert str(caught.value).count("bad_schema.yml:") == 9


def test_load_playbooks_refuses_a_set_with_any_bad_file() -> None:
    with pytest.raises(PlaybookSchemaError, match=r"broken_yaml\.yml:3") as caught:
        load_playbooks(EXAMPLES, TARGETS)
    assert "sandbox_escape.yml:9" in str(caught.value)


def test_load_playbooks_reports_clashing_names_and_matches(tmp_path: Path) -> None:
    text = (EXAMPLES / "restart_until_healthy.yml").read_text()
    (tmp_path / "a.yml").write_text(text)
    (tmp_path / "b.yml").write_text(text)
    with pytest.raises(PlaybookSchemaError) as caught:
        load_playbooks(tmp_path)
    assert "b.yml:1: name: 'restart-until-healthy' is also the name of" in str(caught.value)
    assert "b.yml:1: match: same match as" in str(caught.value)


def step_problems(step: str, extra: str = "") -> list[str]:
    """Problems (as `line: field: message`) of a playbook whose steps are a logs step + this."""
    text = (
        "name: t\nmatch: {alertname: A}\n" + extra + "steps:\n"
        "  - id: logs\n    phase: diagnose\n    action: docker.logs\n" + step
    )
    try:
        load_playbook_text(text, "t.yml", TARGETS)
    except PlaybookSchemaError as exc:
        return [line.split(":", 1)[1] for line in str(exc).splitlines()[1:]]
    return []


@pytest.mark.parametrize(("step", "expected"), [
    ("  - id: r\n    phase: validate\n    action: docker.restart\n",
     "8: steps[1].phase: docker.restart changes the target"),
    ("  - id: r\n    phase: fix\n    action: docker.restart\n  - id: l2\n    phase: diagnose\n"
     "    action: docker.logs\n", "11: steps[2].phase: a diagnose step after a fix step"),
    ("  - id: r\n    phase: diagnose\n    action: docker.exec\n    with: {cmd: [ls]}\n",
     "8: steps[1].phase: docker.exec changes the target, so it belongs in phase: fix (or mark"),
    ("  - id: r\n    phase: diagnose\n    action: docker.inspect\n    idempotent: true\n",
     "10: steps[1].idempotent: only meaningful on a mutating step"),
    ("  - id: r\n    phase: fix\n    action: docker.restart\n    read_only: true\n",
     "10: steps[1].read_only: only docker.exec and http.check can be marked read_only"),
    ("  - id: r\n    phase: fix\n    action: docker.restart\n    escalate: {team: x}\n",
     "10: steps[1].escalate: only used with on_failure: escalate"),
    ("  - id: r\n    phase: fix\n    action: docker.restart\n    on_failure: retry\n",
     "10: steps[1].on_failure: expected abort, continue or escalate"),
    ("  - id: r\n    phase: fix\n    action: docker.restart\n    retries: 1000\n",
     "10: steps[1].retries: at most 100 retries"),
    ("  - id: r\n    phase: fix\n    action: docker.restart\n    timeout: 0s\n",
     "10: steps[1].timeout: expected a duration above zero"),
    ("  - id: bad-id\n    phase: fix\n    action: docker.restart\n",
     "7: steps[1].id: 'bad-id': use lower case letters"),
    ("  - id: logs\n    phase: fix\n    action: docker.restart\n",
     "7: steps[1].id: duplicate step id 'logs'"),
    ("  - id: r\n    action: docker.restart\n", "7: steps[1].phase: is required"),
    ("  - id: r\n    phase: fix\n    action: docker.restart\n    retry: 2\n",
     "10: steps[1].retry: unknown key (did you mean 'retries'?)"),
    ("  - id: r\n    phase: fix\n    action: docker.restart\n    when: \"{{ x }}\"\n",
     "10: steps[1].when: an expression is written without {{ }}"),
    ("  - id: r\n    phase: fix\n    action: docker.restart\n    when: \"steps.logs.lnes > 0\"\n",
     "10: steps[1].when: steps.logs (docker.logs) has no output 'lnes'"),
    ("  - id: r\n    phase: fix\n    action: docker.restart\n    when: \"alert.lables.x\"\n",
     "10: steps[1].when: alert has no field 'lables' (did you mean 'labels'?)"),
    ("  - id: r\n    phase: fix\n    action: docker.restart\n    when: \"target.contaner\"\n",
     "10: steps[1].when: target has no field 'contaner' (did you mean 'container'?)"),
    ("  - id: r\n    phase: fix\n    action: docker.restart\n    when: \"params.nope\"\n",
     "10: steps[1].when: params has no field 'nope'"),
    ("  - id: r\n    phase: fix\n    action: docker.restart\n    when: \"steps.r.status\"\n",
     "10: steps[1].when: steps.r is not an earlier step"),
    ("  - id: r\n    phase: fix\n    action: docker.exec\n    with: {cmd: [\"ls -la\", /app]}\n",
     "10: steps[1].with.cmd: the program name 'ls -la' contains a space"),
    ("  - id: r\n    phase: fix\n    action: docker.exec\n    with: {cmd: [ls, {a: b}]}\n",
     "10: steps[1].with.cmd: item 1: expected a string"),
    ("  - id: r\n    phase: fix\n    action: docker.update\n    with: {}\n",
     "10: steps[1].with: give at least one of memory, memory_swap, cpus"),
    ("  - id: r\n    phase: validate\n    action: http.check\n"
     "    with: {path: /health, retries: 30, interval: 5s}\n",
     "10: steps[1].with: retries x interval is 150s but the step timeout is 60s"),
    ("  - id: r\n    phase: validate\n    action: http.check\n"
     "    with: {path: //evil.example/health}\n", "10: steps[1].with.path: expected a path"),
    ("  - id: r\n    phase: validate\n    action: assert\n"
     "    with: {that: \"steps.logs.lines >\"}\n",
     "10: steps[1].with.that: template syntax error"),
    ("  - id: r\n    phase: diagnose\n    action: diagnose.classify\n"
     "    with: {rules: [{pattern: \"(\", scenario: x}]}\n",
     "10: steps[1].with.rules: rule 0: invalid regular expression '('"),
    ("  - id: r\n    phase: diagnose\n    action: diagnose.classify\n"
     "    with: {rules: [{pattern: x, state: {a: 1}, scenario: x}]}\n",
     "10: steps[1].with.rules: rule 0: give exactly one of pattern or state"),
    ("  - id: r\n    phase: fix\n    action: docker.recreate\n"
     "    with: {config: {memory: 16g}}\n",
     "10: steps[1].with.config.memory: 16g exceeds the max_memory 4g"),
    ("  - id: r\n    phase: fix\n    action: docker.exec\n"
     "    with: {cmd: [echo, \"{{ alrt.labels.x }}\"]}\n",
     "10: steps[1].with.cmd: unknown variable 'alrt'"),
    ("  - id: r\n    phase: fix\n    action: notify\n"
     "    with: {team: ml-team-lead, level: urgent, reason: x}\n",
     "10: steps[1].with.level: expected one of page, notify"),
    ("  - id: r\n    phase: fix\n    action: docker.restart\n    on_failure: escalate\n"
     "    escalate: {team: ml-team-lead, level: loud}\n",
     "11: steps[1].escalate.level: expected one of page, notify"),
])
def test_step_rules(step: str, expected: str) -> None:
    found = step_problems(step)
    assert any(p.strip().startswith(expected) for p in found), found


@pytest.mark.parametrize(("extra", "expected"), [
    ("target: \"{{ steps.logs.output }}\"\n", "3: target: unknown variable 'steps'"),
    ("limits: {timeout: forever}\n", "3: limits.timeout: expected a duration"),
    ("limits: {max_runs_per_hour: 0}\n", "3: limits.max_runs_per_hour: expected a positive"),
    ("escalation: {level: page}\n", "3: escalation.team: is required"),
    ("escalation: {team: ml-team-lead, reason: x}\n", "3: escalation.reason: unknown key"),
    ("stepz: []\n", "3: stepz: unknown key (did you mean 'steps'?)"),
])
def test_playbook_rules(extra: str, expected: str) -> None:
    found = step_problems("", extra)
    assert any(p.strip().startswith(expected) for p in found), found


def test_match_must_be_non_empty_strings() -> None:
    with pytest.raises(PlaybookSchemaError, match="2: match: must not be empty"):
        load_playbook_text("name: t\nmatch: {}\nsteps:\n  - {id: a, phase: fix, "
                           "action: docker.restart}\n", "t.yml")


def alert(**labels: str) -> object:
    return parse_alert({"status": "firing", "labels": labels,
                        "startsAt": "2026-11-29T11:27:02Z"})


def test_select_playbook_by_match_labels_most_specific_first() -> None:
    general = load_playbook_text("name: general\nmatch: {alertname: A}\nsteps:\n"
                                 "  - {id: a, phase: diagnose, action: docker.inspect}\n")
    specific = load_playbook_text("name: specific\nmatch: {alertname: A, service: s}\nsteps:\n"
                                  "  - {id: a, phase: diagnose, action: docker.inspect}\n")
    found = alert(alertname="A", service="s")
    assert select_playbook([general, specific], found) is specific  # type: ignore[arg-type]
    assert select_playbook([general, specific], {"alertname": "A"}) is general
    assert select_playbook([general, specific], {"alertname": "B"}) is None


def test_the_playbook_guide_documents_every_action() -> None:
    from remediator.core.actions import ACTIONS

    guide = (ROOT / "playbooks" / "README.md").read_text()
    missing = [name for name in ACTIONS if f"`{name}`" not in guide]
    assert missing == []


def test_the_playbook_guide_example_is_valid(tmp_path: Path) -> None:
    guide = (ROOT / "playbooks" / "README.md").read_text()
    example = guide.split("```yaml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "example.yml"
    path.write_text(example)
    assert validate_paths([path, CONFIG, ROOT / "config" / "escalation.yml"]) == []


@pytest.mark.parametrize(("args", "problem"), [
    ({"path": "/app/config/model.yml", "content": "device: cpu\n"}, None),
    ({"path": "/app/config/model.yml", "last_known_good": True, "mode": "0644",
      "owner": "1000:1000"}, None),
    ({"path": "/app/config/model.yml", "from_image": True}, None),
    ({"path": "/app/config/model.yml"}, "give content, last_known_good: true or from_image"),
    ({"path": "/app/config/model.yml", "content": "x", "last_known_good": True},
     "(exactly one)"),
    ({"path": "/app/config/model.yml", "last_known_good": True, "from_image": True},
     "(exactly one)"),
    ({"path": "config/model.yml", "content": "x"}, "expected an absolute path"),
    ({"path": "/app/../etc/passwd", "content": "x"}, "climbs out with '..'"),
    ({"path": "/a", "content": "x", "mode": 644}, "expected permission bits in octal"),
    ({"path": "/a", "content": "x", "owner": "appuser"}, "expected a numeric owner"),
])
def test_put_file_arguments(args: dict[str, object], problem: str | None) -> None:
    from remediator.core.actions import ACTIONS, normalize_args

    normalized, problems = normalize_args(ACTIONS["docker.put_file"], args)
    if problem is None:
        assert problems == []
        assert normalized.get("mode", 0o644) == 0o644
    else:
        assert any(problem in message for _, message in problems), problems


@pytest.mark.parametrize(("with_", "message"), [
    ("[ls]", "10: steps[0].with: expected a mapping, got list ['ls']"),
    ("{team: x, reason: y, level: {a: 1}}",
     "10: steps[0].with.level: expected one of page, notify, got mapping {'a': 1}"),
])
def test_type_problems_name_yaml_types_not_internal_classes(with_: str, message: str) -> None:
    text = ("name: t\nmatch: {alertname: X}\nsteps:\n  - id: a\n    phase: fix\n"
            f"    action: notify\n\n\n\n    with: {with_}\n")
    with pytest.raises(PlaybookSchemaError) as caught:
        load_playbook_text(text, "t.yml")
    assert f"t.yml:{message}" in str(caught.value)
    assert "Line" not in str(caught.value)


def test_an_http_check_that_posts_outside_the_fix_phase_is_refused_naming_file_and_step(
) -> None:
    text = ("name: t\nmatch: {alertname: X}\nsteps:\n  - id: poke\n    phase: diagnose\n"
            "    action: http.check\n    with: {path: /model/reload, method: POST}\n")
    with pytest.raises(PlaybookSchemaError) as caught:
        load_playbook_text(text, "poke.yml")
    assert ("poke.yml:5: steps[0].phase: http.check with method: POST changes the target, so "
            "it belongs in phase: fix") in str(caught.value)


def test_a_misspelt_method_is_reported_once_as_a_bad_method() -> None:
    text = ("name: t\nmatch: {alertname: X}\nsteps:\n  - id: poke\n    phase: diagnose\n"
            "    action: http.check\n    with: {path: /health, method: post}\n")
    with pytest.raises(PlaybookSchemaError) as caught:
        load_playbook_text(text, "poke.yml")
    assert "steps[0].with.method: expected GET, HEAD or POST, got str 'post'" in str(caught.value)
    assert "changes the target" not in str(caught.value)


def test_an_http_check_is_mutating_unless_it_gets_heads_or_is_declared_read_only() -> None:
    playbook = load_playbook_text("""
name: t
match: {alertname: X}
steps:
  - {id: health, phase: diagnose, action: http.check, with: {path: /health}}
  - {id: head, phase: diagnose, action: http.check, with: {path: /health, method: HEAD}}
  - id: reload
    phase: fix
    action: http.check
    idempotent: true
    with: {path: /model/reload, method: POST}
  - id: inference
    phase: validate
    action: http.check
    read_only: true
    with: {path: /model/inference, method: POST, body: {}}
""")
    assert {s.id: s.mutating for s in playbook.steps} == {
        "health": False, "head": False, "reload": True, "inference": False}
