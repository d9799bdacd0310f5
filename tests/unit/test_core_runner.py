"""The step runner with a fake runtime and a fake clock: when, outputs, retries, timeouts,
on_failure, dry run, resolution mid-run, resume after a crash."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from remediator.core.alerts import Alert, parse_alert
from remediator.core.config import load_config
from remediator.core.playbook import load_playbook_text
from remediator.core.playbook_model import Phase, Playbook, Step
from remediator.core.results import ExecutionResult, Outcome, StepResult, StepStatus
from remediator.core.runner import run_playbook
from remediator.errors import ActionFailed, ActionTimeout
from tests.support.fakes import FakeClock, FakeRuntime

ROOT = Path(__file__).resolve().parents[2]
TARGET = load_config(ROOT / "config" / "remediator.yml", env={}).targets[0]
HOSTILE = "$(touch /tmp/x); rm -rf /"

def make_alert(**labels: str) -> Alert:
    return parse_alert({
        "status": "firing", "startsAt": "2026-11-29T11:27:02.749133669Z",
        "labels": {"alertname": "ModelLoadFailure", "service": "app-prod", **labels},
        "annotations": {"summary": "Model failed to load"}, "fingerprint": "0023b7e32bfe951f",
    })


def playbook(steps: str, head: str = "") -> Playbook:
    return load_playbook_text("name: t\nmatch: {alertname: ModelLoadFailure}\n" + head
                              + "steps:\n" + steps, "t.yml", [TARGET])


def run(pb: Playbook, runtime: FakeRuntime, clock: FakeClock | None = None,
        **kwargs: Any) -> ExecutionResult:
    clock = clock or runtime.clock or FakeClock()
    return run_playbook(pb, kwargs.pop("alert", make_alert()), TARGET, runtime,
                        clock=clock.monotonic, sleep=clock.sleep, now=clock.now, **kwargs)


def statuses(result: ExecutionResult) -> dict[str, str]:
    return {step.id: step.status.value for step in result.steps}


LOGS_CLASSIFY_RESTART_HEALTH = """
  - id: logs
    phase: diagnose
    action: docker.logs
    with: {since: 10m, grep: "model|load|error"}
  - id: classify
    phase: diagnose
    action: diagnose.classify
    with:
      text: "{{ steps.logs.output }}"
      default: unknown
      rules: [{pattern: FileNotFoundError, scenario: file_missing_or_corrupted}]
  - id: restart
    phase: fix
    when: "steps.classify.scenario == 'file_missing_or_corrupted'"
    action: docker.restart
    idempotent: true
  - id: health
    phase: validate
    action: http.check
    with: {path: /health, expect: {status: healthy}}
"""


# -- order, outputs, when -------------------------------------------------------------------

def test_outputs_of_earlier_steps_feed_later_ones_and_set_the_scenario() -> None:
    runtime = FakeRuntime(docker__logs={"output": "ERROR FileNotFoundError: best_model.pth"})
    result = run(playbook(LOGS_CLASSIFY_RESTART_HEALTH), runtime)
    assert result.outcome is Outcome.SUCCESS and result.reason is None
    assert result.scenario == "file_missing_or_corrupted"
    assert runtime.actions() == ["docker.logs", "docker.restart", "http.check"]
    # Arguments reach the runtime normalised: seconds, defaults filled in.
    assert runtime.calls[0][1] == {"since": 600.0, "grep": "model|load|error"}
    assert runtime.calls[2][1]["expect_status"] == 200 and runtime.calls[2][1]["retries"] == 0
    assert all(call.target.name == "app-prod" for call in runtime.calls)


def test_when_false_skips_the_step_and_says_why() -> None:
    runtime = FakeRuntime(docker__logs={"output": "all good"})
    result = run(playbook(LOGS_CLASSIFY_RESTART_HEALTH), runtime)
    restart = result.step("restart")
    assert restart is not None and restart.status is StepStatus.SKIPPED
    assert restart.note == "when: steps.classify.scenario == 'file_missing_or_corrupted' was false"
    assert "docker.restart" not in runtime.actions()
    assert result.scenario == "unknown"


def test_a_skipped_steps_outputs_read_as_none_not_as_an_error() -> None:
    pb = playbook("""
  - id: maybe
    phase: diagnose
    when: "false"
    action: docker.logs
  - id: after
    phase: diagnose
    action: assert
    with: {that: "steps.maybe.output is none and steps.maybe.status == 'skipped'"}
""")
    assert statuses(run(pb, FakeRuntime())) == {"maybe": "skipped", "after": "ok"}


def test_on_step_sees_each_step_start_and_finish() -> None:
    seen: list[tuple[str, str]] = []
    run(playbook(LOGS_CLASSIFY_RESTART_HEALTH), FakeRuntime(docker__logs={"output": "x"}),
        on_step=lambda step: seen.append((step.id, step.status.value)))
    assert seen == [("logs", "running"), ("logs", "ok"), ("classify", "running"),
                    ("classify", "ok"), ("restart", "skipped"), ("health", "running"),
                    ("health", "ok")]


# -- retries and timeouts ---------------------------------------------------------------

RESTART_WITH_RETRIES = """
  - id: restart
    phase: fix
    action: docker.restart
    retries: 2
    delay: 5s
    timeout: 20s
"""


def test_retries_make_extra_attempts_delay_apart() -> None:
    clock = FakeClock()
    runtime = FakeRuntime(clock, docker__restart=[ActionFailed("daemon busy"),
                                                  ActionFailed("daemon busy"), {"output": "ok"}])
    result = run(playbook(RESTART_WITH_RETRIES), runtime)
    restart = result.step("restart")
    assert restart is not None and restart.status is StepStatus.OK and restart.attempts == 3
    assert clock.sleeps == [5.0, 5.0]
    assert [call[3] for call in runtime.calls] == [20.0, 20.0, 20.0]  # the step timeout


def test_exhausted_retries_fail_with_the_last_error() -> None:
    runtime = FakeRuntime(docker__restart=ActionFailed("no such container"))
    result = run(playbook(RESTART_WITH_RETRIES), runtime)
    assert result.outcome is Outcome.FAILED
    assert result.reason == "step 'restart' (docker.restart) failed: no such container"
    assert len(runtime.calls) == 3


def test_an_action_timeout_is_a_timeout_status() -> None:
    runtime = FakeRuntime(docker__restart=ActionTimeout("restart still running after 20s"))
    result = run(playbook(RESTART_WITH_RETRIES.replace("retries: 2", "retries: 0")), runtime)
    restart = result.step("restart")
    assert restart is not None and restart.status is StepStatus.TIMEOUT
    assert restart.error == "restart still running after 20s"
    assert result.outcome is Outcome.FAILED


def test_the_playbook_timeout_caps_steps_then_aborts_and_escalates() -> None:
    clock = FakeClock()

    def slow(args: dict[str, Any]) -> dict[str, Any]:
        clock.t += 100.0
        return {"output": "slow"}

    runtime = FakeRuntime(clock, docker__logs=slow, docker__restart=slow)
    steps = """
  - {id: a, phase: diagnose, action: docker.logs, timeout: 2m}
  - {id: b, phase: diagnose, action: docker.logs, timeout: 2m}
  - {id: c, phase: fix, action: docker.restart, timeout: 2m}
  - {id: d, phase: validate, action: http.check, with: {path: /health}}
"""
    result = run(playbook(steps, "limits: {timeout: 250s}\n"), runtime)
    assert [call[3] for call in runtime.calls] == [120.0, 120.0, 50.0]  # c gets what is left
    assert result.outcome is Outcome.ABORTED
    assert result.reason == "playbook ran past its limits.timeout of 250s (at step 'd')"
    assert [(e.team, e.step_id) for e in result.escalations] == [("ml-team-lead", "d")]


# -- on_failure --------------------------------------------------------------------------

def failing_step(on_failure: str, extra: str = "") -> Playbook:
    return playbook(f"""
  - id: restore
    phase: fix
    action: docker.copy
    with: {{src: /backup/models/best_model.pth, dest: /app/models/best_model.pth}}
    idempotent: true
    on_failure: {on_failure}
{extra}
  - id: health
    phase: validate
    action: http.check
    with: {{path: /health}}
""", "escalation: {team: ml-team-lead}\n")


def test_on_failure_abort_stops_the_run() -> None:
    runtime = FakeRuntime(docker__copy=ActionFailed("no backup"))
    result = run(failing_step("abort"), runtime)
    assert result.outcome is Outcome.FAILED and runtime.actions() == ["docker.copy"]
    assert result.escalations == []


def test_on_failure_continue_runs_on_and_later_steps_see_the_status() -> None:
    runtime = FakeRuntime(docker__copy=ActionFailed("no backup"))
    result = run(failing_step("continue"), runtime)
    assert statuses(result) == {"restore": "failed", "health": "ok"}
    assert result.outcome is Outcome.SUCCESS  # validation passed


def test_on_failure_escalate_records_a_request_and_stops() -> None:
    extra = ("    escalate: {team: emergency, level: page, reason: \"restore failed on "
             "{{ target.name }}: {{ steps.restore.error }}\"}")
    result = run(failing_step("escalate", extra),
                 FakeRuntime(docker__copy=ActionFailed("no backup")))
    assert result.outcome is Outcome.ESCALATED
    [request] = result.escalations
    assert (request.team, request.level, request.step_id) == ("emergency", "page", "restore")
    assert request.reason == "restore failed on app-prod: no backup"


def test_an_escalation_with_an_unknown_rendered_level_still_goes_out() -> None:
    extra = "    escalate: {team: ml-team-lead, level: \"{{ params.level }}\"}"
    pb = playbook(f"""
  - id: restore
    phase: fix
    action: docker.copy
    with: {{src: /b/m.pth, dest: /a/m.pth}}
    on_failure: escalate
{extra}
""", "params: {level: loud}\n")
    result = run(pb, FakeRuntime(docker__copy=ActionFailed("no backup")))
    [request] = result.escalations
    assert request.level == "notify" and request.reason.endswith("(level 'loud' unknown)")


def test_on_failure_escalate_defaults_to_the_playbook_team() -> None:
    result = run(failing_step("escalate"), FakeRuntime(docker__copy=ActionFailed("no backup")))
    [request] = result.escalations
    assert request.team == "ml-team-lead" and request.level == "notify"
    assert request.reason == "step 'restore' (docker.copy) failed: no backup"


def test_a_label_in_a_step_error_reaches_the_escalation_as_text_never_as_a_template() -> None:
    pb = playbook("""
  - id: check_instance
    phase: fix
    action: assert
    with: {that: "false", message: "instance {{ alert.labels.instance }} is not ours"}
    on_failure: escalate
""")
    result = run(pb, FakeRuntime(), alert=make_alert(instance="{{ 'x' * 10**7 }}"))
    [request] = result.escalations
    assert request.reason == ("step 'check_instance' (assert) failed: "
                              "instance {{ 'x' * 10**7 }} is not ours")


def test_an_engine_error_reaches_the_escalation_as_text_never_as_a_template() -> None:
    engine_says = ActionFailed("engine said: {{ range(3)|list }}")
    result = run(failing_step("escalate"), FakeRuntime(docker__copy=engine_says))
    [request] = result.escalations
    assert request.reason == "step 'restore' (docker.copy) failed: engine said: {{ range(3)|list }}"


def test_a_failed_validation_step_fails_the_run_even_with_continue() -> None:
    pb = playbook("""
  - id: health
    phase: validate
    action: http.check
    with: {path: /health}
    on_failure: continue
""")
    runtime = FakeRuntime(http__check={"ok": False, "status_code": 503,
                                       "output": "expectation not met: 503"})
    result = run(pb, runtime)
    assert result.outcome is Outcome.FAILED
    health = result.step("health")
    assert health is not None and health.outputs["status_code"] == 503  # evidence kept
    assert health.error == "expectation not met: 503"


def test_a_command_exiting_non_zero_fails_unless_check_is_off() -> None:
    pb = playbook("""
  - id: strict
    phase: fix
    action: docker.exec
    with: {cmd: [cp, /backup/models/best_model.pth, /app/models/]}
    on_failure: continue
  - id: lenient
    phase: fix
    action: docker.exec
    with: {cmd: [ls, /app/models/best_model.pth], check: false}
""")
    runtime = FakeRuntime(docker__exec={"exit_code": 1, "stdout": "",
                                        "stderr": "cp: cannot stat: No such file"})
    result = run(pb, runtime)
    assert statuses(result) == {"strict": "failed", "lenient": "ok"}
    strict = result.step("strict")
    assert strict is not None
    assert strict.error == "command exited with status 1: cp: cannot stat: No such file"


def test_an_adapter_bug_is_recorded_not_raised() -> None:
    result = run(failing_step("continue"), FakeRuntime(docker__copy=KeyError("State")))
    restore = result.step("restore")
    assert restore is not None and restore.error == "unexpected KeyError: 'State'"


# -- core actions --------------------------------------------------------------------------

def test_notify_records_an_escalation_request() -> None:
    pb = playbook("""
  - id: tell
    phase: fix
    action: notify
    with: {team: ml-team-lead, reason: "{{ alert.labels.alertname }} needs a human"}
""")
    result = run(pb, FakeRuntime())
    assert result.outcome is Outcome.ESCALATED
    assert [e.to_dict() for e in result.escalations] == [
        {"team": "ml-team-lead", "level": "notify", "reason": "ModelLoadFailure needs a human",
         "step_id": "tell"}]


def test_assert_and_wait_run_in_the_core() -> None:
    clock = FakeClock()
    pb = playbook("""
  - {id: pause, phase: diagnose, action: wait, with: {duration: 15s}}
  - {id: check, phase: diagnose, action: assert, with: {that: "steps.pause.waited_s == 15"}}
  - id: bad
    phase: diagnose
    action: assert
    with: {that: "steps.pause.waited_s > 60", message: waited too little}
""")
    result = run(pb, FakeRuntime(), clock)
    assert clock.sleeps == [15.0]
    assert statuses(result) == {"pause": "ok", "check": "ok", "bad": "failed"}
    assert result.reason == "step 'bad' (assert) failed: waited too little"


def test_a_wait_longer_than_its_timeout_times_out() -> None:
    pb = playbook("  - {id: pause, phase: diagnose, action: wait, with: {duration: 5m}, "
                  "timeout: 10s}\n")
    result = run(pb, FakeRuntime())
    pause = result.step("pause")
    assert pause is not None and pause.status is StepStatus.TIMEOUT


# -- templates at run time -----------------------------------------------------------------

ECHO_LABEL = """
  - id: echo
    phase: diagnose
    action: docker.exec
    read_only: true
    with: {cmd: [echo, "{{ alert.labels.note }}", "{{ alert.annotations.summary }}"]}
"""


def test_label_values_reach_the_runtime_as_single_literal_argv_elements() -> None:
    runtime = FakeRuntime(docker__exec={"exit_code": 0, "output": ""})
    run(playbook(ECHO_LABEL), runtime, alert=make_alert(note=HOSTILE))
    assert runtime.calls[0][1]["cmd"] == ["echo", HOSTILE, "Model failed to load"]
    runtime = FakeRuntime(docker__exec={"exit_code": 0, "output": ""})
    run(playbook(ECHO_LABEL), runtime, alert=make_alert(note="{{ 7*7 }}"))
    assert runtime.calls[0][1]["cmd"][1] == "{{ 7*7 }}"


def test_a_missing_label_fails_the_step_not_the_runner() -> None:
    runtime = FakeRuntime()
    result = run(playbook(ECHO_LABEL), runtime)  # no `note` label on this alert
    echo = result.step("echo")
    assert echo is not None and echo.status is StepStatus.FAILED
    assert echo.error is not None and echo.error.startswith("with.cmd: undefined value")
    assert runtime.calls == []


def test_a_sandbox_escape_that_skipped_validation_still_raises_at_run_time() -> None:
    step = Step(id="probe", action="docker.exec", phase=Phase.DIAGNOSE, read_only=True,
                args={"cmd": ["echo", "{{ ''.__class__.__mro__ }}"]})
    pb = Playbook(name="raw", match={"alertname": "ModelLoadFailure"}, steps=(step,))
    runtime = FakeRuntime()
    result = run(pb, runtime)
    probe = result.step("probe")
    assert probe is not None and probe.status is StepStatus.FAILED
    assert probe.error is not None and "refused by the sandbox" in probe.error
    assert runtime.calls == []


def test_bounds_are_enforced_on_rendered_values_before_the_runtime() -> None:
    pb = playbook("""
  - id: grow
    phase: fix
    action: docker.update
    with: {memory: "{{ params.memory }}"}
""", "params: {memory: 16g}\n")
    runtime = FakeRuntime()
    result = run(pb, runtime)
    grow = result.step("grow")
    assert grow is not None
    assert grow.error == "with.memory: 16g exceeds the max_memory 4g of target 'app-prod'"
    assert runtime.calls == []


def test_a_playbook_cannot_touch_a_target_other_than_its_own() -> None:
    pb = playbook("  - {id: r, phase: fix, action: docker.restart}\n",
                  "target: \"{{ alert.labels.service }}\"\n")
    runtime = FakeRuntime()
    result = run(pb, runtime, alert=make_alert(service="billing"))
    assert result.outcome is Outcome.ABORTED and runtime.calls == []
    assert result.reason == "playbook 't' acts on target 'billing', not 'app-prod': refused"


# -- dry run ---------------------------------------------------------------------------------

def test_dry_run_records_what_mutating_steps_would_do_and_runs_nothing_mutating() -> None:
    pb = playbook("""
  - id: look
    phase: diagnose
    action: docker.exec
    read_only: true
    with: {cmd: [ls, -la, /app/models]}
  - id: restore
    phase: fix
    action: docker.copy
    with: {src: "{{ target.backup_path }}/best_model.pth", dest: /app/models/best_model.pth}
  - id: chmod
    phase: fix
    action: docker.exec
    with: {cmd: [chmod, "644", "/app/models/{{ alert.labels.note }}"]}
  - id: tell
    phase: fix
    action: notify
    with: {team: ml-team-lead, reason: would page}
""")
    runtime = FakeRuntime(docker__exec={"exit_code": 0, "output": "total 0"})
    result = run(pb, runtime, dry_run=True, alert=make_alert(note=HOSTILE))
    assert runtime.actions() == ["docker.exec"]  # only the read-only look
    assert statuses(result) == {"look": "ok", "restore": "skipped_dry_run",
                                "chmod": "skipped_dry_run", "tell": "ok"}
    restore, chmod = result.step("restore"), result.step("chmod")
    assert restore is not None and restore.rendered_args == {
        "src": "/backup/models/best_model.pth", "dest": "/app/models/best_model.pth"}
    assert chmod is not None and chmod.rendered_args["cmd"] == ["chmod", "644",
                                                               f"/app/models/{HOSTILE}"]
    assert result.outcome is Outcome.DRY_RUN
    assert result.escalations == []  # nothing is delivered from a dry run
    assert [e.reason for e in result.would_escalate] == ["would page"]
    assert result.reason == "dry run; a real run would end escalated: escalated to ml-team-lead"


def test_a_dry_run_does_not_send_an_http_check_that_posts() -> None:
    pb = playbook("""
  - {id: health, phase: diagnose, action: http.check, with: {path: /health}}
  - id: reload
    phase: fix
    action: http.check
    with: {path: /model/reload, method: POST, body: {}, expect_status: 202}
""")
    runtime = FakeRuntime()
    result = run(pb, runtime, dry_run=True)
    assert [(c[0], c[1]["method"]) for c in runtime.calls] == [("http.check", "GET")]
    assert statuses(result) == {"health": "ok", "reload": "skipped_dry_run"}


# -- the alert resolves mid-run -------------------------------------------------------------

def test_a_resolved_alert_skips_remaining_fix_steps_but_still_validates() -> None:
    pb = playbook("""
  - {id: logs, phase: diagnose, action: docker.logs}
  - {id: restore, phase: fix, action: docker.copy, with: {src: /b/m.pth, dest: /a/m.pth}}
  - {id: restart, phase: fix, action: docker.restart}
  - {id: health, phase: validate, action: http.check, with: {path: /health}}
""")
    answers = iter([False, True])
    runtime = FakeRuntime()
    result = run(pb, runtime, should_stop_fixing=lambda: next(answers))
    assert statuses(result) == {"logs": "ok", "restore": "ok", "restart": "skipped",
                                "health": "ok"}
    assert runtime.actions() == ["docker.logs", "docker.copy", "http.check"]
    assert result.stopped_fixing and result.outcome is Outcome.SUCCESS
    assert result.validated and result.reason == "the alert resolved; validation passed"


CUT_SHORT = """
  - {id: restore, phase: fix, action: docker.copy, with: {src: /b/m.pth, dest: /a/m.pth}}
  - {id: restart, phase: fix, action: docker.restart}
  - id: health
    phase: validate
    action: http.check
    with: {path: /health}
    when: "steps.restart.status == 'ok'"
"""


def test_a_claim_mid_run_ends_it_aborted_not_success() -> None:
    answers = iter([False, "incident claimed by ann"])
    result = run(playbook(CUT_SHORT), FakeRuntime(), should_stop_fixing=lambda: next(answers))
    assert statuses(result) == {"restore": "ok", "restart": "skipped", "health": "skipped"}
    assert result.outcome is Outcome.ABORTED and not result.validated
    assert result.reason == ("incident claimed by ann: fixing stopped before the end; "
                             "the remaining fix steps were not run")


def test_a_resolve_that_skipped_validation_does_not_claim_it_passed() -> None:
    answers = iter([False, True])
    result = run(playbook(CUT_SHORT), FakeRuntime(), should_stop_fixing=lambda: next(answers))
    assert result.outcome is Outcome.SUCCESS and not result.validated
    assert result.reason == "the alert resolved; no validation step ran"


# -- resume after a crash -----------------------------------------------------------------

RESUMABLE = """
  - id: logs
    phase: diagnose
    action: docker.logs
  - id: restore
    phase: fix
    action: docker.copy
    with: {src: /backup/models/best_model.pth, dest: /app/models/best_model.pth}
    idempotent: IDEMPOTENT
  - id: health
    phase: validate
    action: http.check
    with: {path: /health}
    when: "'ERROR' in steps.logs.output"
"""


def interrupted_at_restore(idempotent: bool) -> tuple[Playbook, list[StepResult]]:
    pb = playbook(RESUMABLE.replace("IDEMPOTENT", str(idempotent).lower()),
                  "escalation: {team: ml-team-lead}\n")
    first = FakeRuntime(docker__logs={"output": "ERROR FileNotFoundError"})
    recorded: dict[str, StepResult] = {}

    def crash_at_restore(step: StepResult) -> None:
        recorded[step.id] = StepResult.from_dict(json.loads(json.dumps(step.to_dict())))
        if step.id == "restore" and step.status is StepStatus.RUNNING:
            raise SystemExit("the process died here")

    with pytest.raises(SystemExit):
        run(pb, first, on_step=crash_at_restore)
    return pb, list(recorded.values())


def test_resume_does_not_rerun_finished_steps_and_reruns_an_idempotent_one() -> None:
    pb, stored = interrupted_at_restore(idempotent=True)
    assert [(s.id, s.status.value) for s in stored] == [("logs", "ok"), ("restore", "running")]
    runtime = FakeRuntime()
    result = run(pb, runtime, resume_from=stored)
    assert runtime.actions() == ["docker.copy", "http.check"]  # logs not run again
    assert result.outcome is Outcome.SUCCESS  # health's `when` read the stored logs output


def test_resume_never_reruns_an_interrupted_non_idempotent_mutation() -> None:
    pb, stored = interrupted_at_restore(idempotent=False)
    runtime = FakeRuntime()
    result = run(pb, runtime, resume_from=stored)
    assert runtime.calls == []
    assert result.outcome is Outcome.ESCALATED
    restore = result.step("restore")
    assert restore is not None and restore.status is StepStatus.FAILED
    assert restore.error is not None and "not idempotent, so not run again" in restore.error
    assert [(e.team, e.step_id) for e in result.escalations] == [("ml-team-lead", "restore")]


def test_an_interrupted_read_only_step_simply_runs_again() -> None:
    pb = playbook(RESUMABLE.replace("IDEMPOTENT", "false"))
    stored = [StepResult("logs", "docker.logs", "diagnose", StepStatus.RUNNING)]
    runtime = FakeRuntime(docker__logs={"output": "fine"})
    result = run(pb, runtime, resume_from=stored)
    assert runtime.actions() == ["docker.logs", "docker.copy"]
    assert statuses(result)["health"] == "skipped"


def test_a_real_run_resuming_a_dry_run_runs_the_fix_steps_the_dry_run_skipped() -> None:
    pb = playbook(RESUMABLE.replace("IDEMPOTENT", "true"))
    stored = [StepResult("logs", "docker.logs", "diagnose", StepStatus.OK,
                         outputs={"output": "ERROR FileNotFoundError"}),
              StepResult("restore", "docker.copy", "fix", StepStatus.SKIPPED_DRY_RUN)]
    runtime = FakeRuntime()
    result = run(pb, runtime, resume_from=stored)
    assert runtime.actions() == ["docker.copy", "http.check"]  # restore runs for real
    assert statuses(result) == {"logs": "ok", "restore": "ok", "health": "ok"}


# -- results are JSON ----------------------------------------------------------------------

def test_execution_results_round_trip_through_json() -> None:
    runtime = FakeRuntime(docker__logs={"output": "FileNotFoundError", "when": datetime.now()})
    result = run(playbook(LOGS_CLASSIFY_RESTART_HEALTH), runtime)
    text = json.dumps(result.to_dict())
    again = ExecutionResult.from_dict(json.loads(text))
    assert again.to_dict() == json.loads(text)
    assert again.outcome is Outcome.SUCCESS and again.steps[0].status is StepStatus.OK
    assert again.duration_s == result.duration_s
