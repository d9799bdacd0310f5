"""The step runner: one playbook, one alert, one target, through a Runtime.

Order and semantics (the README documents these for playbook authors):
- steps run in file order (diagnose, fix, validate); `when` false -> skipped;
- a step's arguments are rendered in the sandbox, normalised and checked against the
  catalogue and the target's bounds before anything runs;
- dry run: mutating steps are not executed; their result (skipped_dry_run) holds the
  fully rendered arguments; escalations go to `would_escalate`, never `escalations`;
- each attempt gets min(step timeout, time left in limits.timeout), passed to the
  Runtime, which enforces it; `retries` extra attempts, `delay` apart;
- a failed step: abort -> outcome failed; continue -> next step; escalate -> escalation
  request and outcome escalated. Past limits.timeout -> outcome aborted + escalation;
- `should_stop_fixing()` true, or a string saying why (the alert resolved, the incident was
  claimed, Remediator was paused) -> remaining fix steps, and any other mutating step,
  are skipped with that reason as their note; read-only validate steps still run. It is
  asked before each such step, so a pause pressed mid-run stops the next one. Stopped
  because the alert resolved, the run may still end success; stopped for any other
  reason (a pause, a claim), it ends aborted: its fix was cut short;
- resume: steps finished in `resume_from` are not re-run (their outputs feed later
  templates), except a step skipped as dry run when this run is real: it never ran.
  A step found still `running` there is re-run if it is read-only or
  `idempotent`; a mutating, non-idempotent one is NOT re-run: the run escalates, because
  nobody knows whether it took effect (outcome escalated).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from remediator.core import defaults
from remediator.core._core_actions import run_core_action
from remediator.core.actions import bounds_problems, judge_outputs, normalize_args
from remediator.core.alerts import Alert, alert_context
from remediator.core.clock import Clock, utc_now
from remediator.core.escalation_channels import LEVELS
from remediator.core.playbook_model import EscalationSpec, OnFailure, Phase, Playbook, Step
from remediator.core.results import (
    RESOLVED_NOTE,
    EscalationRequest,
    ExecutionResult,
    Outcome,
    StepResult,
    StepStatus,
)
from remediator.core.targets import Target
from remediator.core.templates import evaluate, render, render_text
from remediator.core.units import format_duration
from remediator.errors import ActionTimeout, PlaybookError, RemediatorError, TemplateError

__all__ = ["Runtime", "StepCallback", "run_playbook"]


class Runtime(Protocol):
    """Runs the non-core actions against a target (Docker, HTTP, Prometheus adapters).

    `args` are normalised (see actions.py); `timeout` is in seconds and the runtime must
    enforce it. Return the action's outputs; raise ActionTimeout when cut off, ActionFailed
    (or any RuntimeError_) when the action failed. Outputs may say `ok: False` instead, to
    keep evidence; `output` is then the reason.
    """

    def call(
        self, action: str, args: dict[str, Any], target: Target, timeout: float,
    ) -> dict[str, Any]:
        """Run one action and return its outputs."""
        ...


StepCallback = Callable[[StepResult], None]
"""Called with a step's result when it starts (status running) and when it finishes."""

_Attempt = tuple[StepStatus, dict[str, Any], str | None]


@dataclass
class _Services:
    """What the runner needs from outside, injected so tests control time."""

    runtime: Runtime
    clock: Callable[[], float]
    sleep: Callable[[float], None]
    now: Callable[[], datetime]
    on_step: StepCallback | None
    should_stop_fixing: Callable[[], bool | str] | None


def run_playbook(
    playbook: Playbook,
    alert: Alert,
    target: Target,
    runtime: Runtime,
    *,
    dry_run: bool = False,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    now: Clock = utc_now,
    on_step: StepCallback | None = None,
    resume_from: Sequence[StepResult] | None = None,
    should_stop_fixing: Callable[[], bool | str] | None = None,
) -> ExecutionResult:
    """Run a playbook to an outcome. Step failures are recorded, never raised.

    Exceptions from `on_step` and `should_stop_fixing` propagate: if the store cannot
    record a step, the run should stop and be resumed, not carry on unrecorded.
    """
    services = _Services(runtime, clock, sleep, now, on_step, should_stop_fixing)
    execution = _Execution(playbook, alert, target, services, dry_run)
    return execution.run({step.id: step for step in resume_from or ()})


class _Execution:
    """The mutable state of one run."""

    def __init__(
        self, playbook: Playbook, alert: Alert, target: Target, services: _Services,
        dry_run: bool,
    ) -> None:
        self.playbook, self.target, self.services = playbook, target, services
        self.dry_run = dry_run
        self.result = ExecutionResult(playbook.name, target.name, alert.incident_key,
                                      Outcome.SUCCESS, dry_run=dry_run, started_at=services.now())
        self.steps: dict[str, dict[str, Any]] = {}
        self.context: dict[str, Any] = {"alert": alert_context(alert), "params": playbook.params,
                                        "target": target.context(), "steps": self.steps}
        self.deadline = services.clock() + playbook.limits.timeout_s
        self.stop: tuple[Outcome, str] | None = None
        self._stopped_because = RESOLVED_NOTE  # what should_stop_fixing said

    def run(self, resume: Mapping[str, StepResult]) -> ExecutionResult:
        self._check_target()
        for step in self.playbook.steps:
            if self.stop is not None:
                break
            prior = resume.get(step.id)
            if prior is not None and prior.action == step.action:
                self._resume(step, prior)
            else:
                self._run_step(step)
        return self._finish()

    # -- target and resume -------------------------------------------------------------

    def _check_target(self) -> None:
        """A playbook that names its target may touch that target and no other."""
        if self.playbook.target is None:
            return
        try:
            wanted = render_text(self.playbook.target, self.context)
        except TemplateError as exc:
            self.stop = (Outcome.ABORTED, f"cannot render the playbook's target: {exc}")
            return
        if wanted != self.target.name:
            self.stop = (Outcome.ABORTED, f"playbook {self.playbook.name!r} acts on target "
                         f"{wanted!r}, not {self.target.name!r}: refused")

    def _resume(self, step: Step, prior: StepResult) -> None:
        if prior.status is StepStatus.SKIPPED_DRY_RUN and not self.dry_run:
            self._run_step(step)  # never ran: a real run must run it, not adopt the skip
        elif prior.status.finished:
            self._adopt(step, prior)
        elif step.mutating and not step.idempotent:
            self._interrupted(step, prior)
        else:
            self._run_step(step)  # read-only or idempotent: safe to run again

    def _adopt(self, step: Step, prior: StepResult) -> None:
        """A step finished before a restart: keep its result, do not run it again."""
        self._record(step, prior)
        if step.action == "notify" and prior.status is StepStatus.OK:
            self._escalate(self._notify_request(step, prior.outputs))
        if prior.status.failed:
            self._on_failure(step, prior)

    def _interrupted(self, step: Step, prior: StepResult) -> None:
        prior = copy.copy(prior)
        prior.status = StepStatus.FAILED
        prior.error = ("interrupted while running (Remediator stopped); not idempotent, so "
                       "not run again: check the target by hand")
        self._record(step, prior)
        self._emit(prior)
        self._escalate(self._failure_request(step, prior))
        self.stop = (Outcome.ESCALATED, f"step {step.id!r} was interrupted mid-way and is not "
                     "idempotent")

    # -- one step --------------------------------------------------------------------------

    def _run_step(self, step: Step) -> None:
        if self._past_deadline(step.id) or self._skip_as_resolved(step):
            return
        result = StepResult(step.id, step.action, step.phase.value, StepStatus.RUNNING,
                            started_at=self.services.now())
        started = self.services.clock()
        try:
            if step.when is not None and not evaluate(step.when, self.context):
                self._done(step, result, started, StepStatus.SKIPPED,
                           note=f"when: {step.when} was false")
                return
            result.rendered_args = self._prepare_args(step)
        except PlaybookError as exc:
            self._done(step, result, started, StepStatus.FAILED, error=str(exc))
            self._on_failure(step, result)
            return
        self._emit(result)
        self._execute(step, result, started)

    def _execute(self, step: Step, result: StepResult, started: float) -> None:
        if self.dry_run and step.mutating:
            self._done(step, result, started, StepStatus.SKIPPED_DRY_RUN,
                       note=f"dry run: would run {step.action} with {result.rendered_args}")
            return
        status, outputs, error = self._attempts(step, result)
        result.outputs = outputs
        self._done(step, result, started, status, error=error)
        if step.action == "notify" and status is StepStatus.OK:
            self._escalate(self._notify_request(step, outputs))
        if status.failed and self.services.clock() >= self.deadline:
            self._past_deadline(step.id)
        elif status.failed:
            self._on_failure(step, result)

    def _prepare_args(self, step: Step) -> dict[str, Any]:
        """Render, normalise and bound-check the step's arguments (PlaybookError if bad)."""
        raw: dict[str, Any] = {}
        for name, value in step.args.items():
            spec = step.spec.arg(name)
            try:
                raw[name] = render(value, self.context) if spec is None or spec.rendered else value
            except TemplateError as exc:
                raise TemplateError(f"with.{name}: {exc}") from None
        args, problems = normalize_args(step.spec, raw)
        problems += bounds_problems(step.action, args, self.target)
        if problems:
            raise PlaybookError("; ".join(f"with.{arg}: {msg}" if arg else msg
                                          for arg, msg in problems))
        return args

    def _attempts(self, step: Step, result: StepResult) -> _Attempt:
        status: StepStatus = StepStatus.FAILED
        outputs: dict[str, Any] = {}
        error: str | None = "playbook time limit reached"
        for attempt in range(1, step.retries + 2):
            remaining = self.deadline - self.services.clock()
            if remaining <= 0:
                break
            result.attempts = attempt
            status, outputs, error = self._attempt(step, result.rendered_args,
                                                   min(step.timeout_s, remaining))
            if status is StepStatus.OK or attempt > step.retries:
                break
            self.services.sleep(max(0.0, min(step.delay_s, self.deadline - self.services.clock())))
        return status, outputs, error

    def _attempt(self, step: Step, args: dict[str, Any], timeout: float) -> _Attempt:
        try:
            outputs = self._call(step, copy.deepcopy(args), timeout)
        except ActionTimeout as exc:
            return StepStatus.TIMEOUT, {}, str(exc) or f"timed out after {format_duration(timeout)}"
        except RemediatorError as exc:
            return StepStatus.FAILED, {}, str(exc) or type(exc).__name__
        except Exception as exc:  # an adapter bug must not kill the run: record it
            return StepStatus.FAILED, {}, f"unexpected {type(exc).__name__}: {exc}"
        if not isinstance(outputs, dict):
            return StepStatus.FAILED, {}, f"runtime returned {type(outputs).__name__}, not outputs"
        error = judge_outputs(step.action, args, outputs)
        return (StepStatus.FAILED if error else StepStatus.OK), outputs, error

    def _call(self, step: Step, args: dict[str, Any], timeout: float) -> dict[str, Any]:
        if step.spec.core:
            return run_core_action(step.action, args, self.context, timeout, self.services.sleep)
        return self.services.runtime.call(step.action, args, self.target, timeout)

    # -- bookkeeping ----------------------------------------------------------------------

    def _done(
        self, step: Step, result: StepResult, started: float, status: StepStatus,
        error: str | None = None, note: str | None = None,
    ) -> None:
        result.status, result.error, result.note = status, error, note
        result.duration_s = round(self.services.clock() - started, 6)
        self._record(step, result)
        self._emit(result)

    def _record(self, step: Step, result: StepResult) -> None:
        self.result.steps.append(result)
        outputs: dict[str, Any] = dict.fromkeys(step.spec.outputs)
        outputs.update(result.outputs)
        outputs.update(status=result.status.value, error=result.error, attempts=result.attempts,
                       duration_s=result.duration_s)
        self.steps[step.id] = outputs
        if step.action == "diagnose.classify" and result.outputs.get("scenario"):
            self.result.scenario = str(result.outputs["scenario"])

    def _emit(self, result: StepResult) -> None:
        if self.services.on_step is not None:
            self.services.on_step(result)

    def _skip_as_resolved(self, step: Step) -> bool:
        """Asked before every fix step and every other step that would mutate: a pause,
        a claim or a resolve between two steps stops the next one."""
        check = self.services.should_stop_fixing
        guarded = step.phase is Phase.FIX or (step.mutating and not self.dry_run)
        if not guarded or check is None:
            return False
        if not self.result.stopped_fixing:
            why = check()
            if not why:
                return False
            self.result.stopped_fixing = True
            self._stopped_because = why if isinstance(why, str) else RESOLVED_NOTE
        result = StepResult(step.id, step.action, step.phase.value, StepStatus.RUNNING,
                            started_at=self.services.now())
        what = "remaining fix steps skipped" if step.phase is Phase.FIX else "not run"
        self._done(step, result, self.services.clock(), StepStatus.SKIPPED,
                   note=f"{self._stopped_because}: {what}")
        return True

    def _past_deadline(self, step_id: str) -> bool:
        if self.services.clock() < self.deadline:
            return False
        limit = format_duration(self.playbook.limits.timeout_s)
        reason = f"playbook ran past its limits.timeout of {limit} (at step {step_id!r})"
        self._escalate(self._request(self.playbook.escalation, step_id, reason))
        self.stop = (Outcome.ABORTED, reason)
        return True

    # -- failure and escalation -------------------------------------------------------------

    def _on_failure(self, step: Step, result: StepResult) -> None:
        reason = f"step {step.id!r} ({step.action}) {result.status.value}: {result.error}"
        if step.on_failure is OnFailure.ABORT:
            self.stop = (Outcome.FAILED, reason)
        elif step.on_failure is OnFailure.ESCALATE:
            request = self._failure_request(step, result)
            self._escalate(request)
            self.stop = (Outcome.ESCALATED, f"{reason}; escalated to {request.team}")

    def _failure_request(self, step: Step, result: StepResult) -> EscalationRequest:
        default = f"step {step.id!r} ({step.action}) {result.status.value}: {result.error}"
        if self.result.scenario:
            default += f" [scenario: {self.result.scenario}]"
        return self._request(step.escalate or self.playbook.escalation, step.id, default)

    def _request(
        self, spec: EscalationSpec, step_id: str | None, default: str,
    ) -> EscalationRequest:
        """Render an escalation spec; if a template fails, escalate anyway with raw text.

        Only the playbook author's fields are templates. `default` is built from runtime
        data (step errors carry rendered labels, stderr, engine messages): it is plain text,
        never rendered, or a label `{{ ... }}` would run as template source.
        """
        fields = {"team": spec.team, "level": spec.level}
        if spec.reason is not None:
            fields["reason"] = spec.reason
        for name, value in fields.items():
            try:
                fields[name] = str(render(value, self.context))
            except TemplateError:
                fields[name] = value if name != "reason" else f"{default} ({value})"
        fields.setdefault("reason", default)
        if fields["level"] not in LEVELS:  # a human must still be asked: at the default level
            fields["reason"] += f" (level {fields['level']!r} unknown)"
            fields["level"] = defaults.DEFAULT_ESCALATION_LEVEL
        return EscalationRequest(fields["team"], fields["level"], fields["reason"], step_id)

    def _notify_request(self, step: Step, outputs: Mapping[str, Any]) -> EscalationRequest:
        return EscalationRequest(str(outputs.get("team")), str(outputs.get("level")),
                                 str(outputs.get("reason")), step.id)

    def _escalate(self, request: EscalationRequest) -> None:
        (self.result.would_escalate if self.dry_run else self.result.escalations).append(request)

    def _finish(self) -> ExecutionResult:
        outcome, reason = self.stop or self._natural_end()
        if self.dry_run:
            detail = f": {reason}" if reason else ""
            reason = f"dry run; a real run would end {outcome.value}{detail}"
            outcome = Outcome.DRY_RUN
        self.result.outcome, self.result.reason = outcome, reason
        self.result.finished_at = self.services.now()
        return self.result

    def _natural_end(self) -> tuple[Outcome, str | None]:
        """Outcome of a run that reached its last step."""
        requests = self.result.escalations or self.result.would_escalate
        if requests:
            teams = ", ".join(dict.fromkeys(r.team for r in requests))
            return Outcome.ESCALATED, f"escalated to {teams}"
        stopped = self.result.stopped_fixing
        if stopped and self._stopped_because != RESOLVED_NOTE:
            # A pause or a claim cut the fix short: whatever validation saw, nothing was
            # fixed by this run (a half-done fix often skips its validation, too).
            return Outcome.ABORTED, (f"{self._stopped_because}: fixing stopped before the "
                                     "end; the remaining fix steps were not run")
        for step in self.result.steps:
            if step.phase == Phase.VALIDATE.value and step.status.failed:
                return Outcome.FAILED, (f"validation step {step.id!r} {step.status.value}: "
                                        f"{step.error}")
        if stopped:
            ran_ok = any(step.phase == Phase.VALIDATE.value and step.status is StepStatus.OK
                         for step in self.result.steps)
            checked = "validation passed" if ran_ok else "no validation step ran"
            return Outcome.SUCCESS, f"{self._stopped_because}; {checked}"
        return Outcome.SUCCESS, None
