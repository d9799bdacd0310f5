"""The worker inside `remediator serve`: drains the inbox and runs executions.

Bounded concurrency; one execution per target at a time, across every replica on the
store: a run holds its execution's lease and its target's (leases.py), renewed while it
goes on. An execution left `running` by a crash (its lease ran out) is resumed, here or by
another replica, from its stored steps: finished steps are not repeated, and the runner
decides what to do about a mutating step that was mid-flight. A run whose lease is no
longer confirmed stops before its next mutating step and stores nothing more: whoever
takes the execution over goes on from its stored steps.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from remediator.background import BackgroundLoop
from remediator.core import defaults
from remediator.core.clock import Clock, utc_now
from remediator.core.config import Mode, RemediatorConfig
from remediator.core.playbook_model import Playbook
from remediator.core.results import (
    RESOLVED_NOTE,
    ExecutionResult,
    ExecutionState,
    Outcome,
    StepResult,
    StepStatus,
)
from remediator.core.runner import Runtime, run_playbook
from remediator.errors import PayloadError, RemediatorError
from remediator.metrics import ServiceMetrics
from remediator.service.intake import Intake
from remediator.service.leases import LOST_NOTE, Leases, RunLease, default_replica_id
from remediator.store import Store
from remediator.store.records import Execution, StepRecord

__all__ = ["PAUSED_NOTE", "Worker"]

log = logging.getLogger("remediator.service.worker")

PAUSED_NOTE = "Remediator was paused (remediator pause)"
"""Why a step a pause stopped was skipped (its note starts with this)."""


class Worker:
    def __init__(self, store: Store, config: RemediatorConfig, playbooks: Sequence[Playbook],
                 runtime: Runtime, metrics: ServiceMetrics, *, dry_run: bool = False,
                 clock: Clock = utc_now, leases: Leases | None = None) -> None:
        self.store = store
        self.config = config
        self.playbooks = {pb.name: pb for pb in playbooks}
        self.runtime = runtime
        self.metrics = metrics
        self.dry_run = dry_run
        self.clock = clock
        self.intake = Intake(store, config, playbooks, metrics, clock)
        # This replica's leases: its runs' and, when it leads, the leader's (housekeeping).
        self.leases = leases or Leases(store, default_replica_id(), clock=clock)
        self._pool = ThreadPoolExecutor(max_workers=config.concurrency,
                                        thread_name_prefix="execution")
        self._busy: dict[str, Future[None]] = {}
        self._next_housekeeping = 0.0
        self._loop = BackgroundLoop("worker", self.tick, interval_s=defaults.WORKER_POLL_INTERVAL_S,
                                    coalesce_s=defaults.WORKER_COALESCE_S, metrics=metrics, log=log)
        # Called once an execution's outcome is stored, with the execution as stored (its
        # redacted steps included); the service wires escalation here (a prompt nudge: what
        # escalation needs was committed with the outcome).
        self.on_finished: Callable[[Execution, ExecutionResult], None] = \
            lambda _execution, _result: None

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        self._log_interrupted()
        self._loop.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._loop.stop(timeout)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def wake(self) -> None:
        self._loop.wake()

    def tick(self) -> None:
        self.intake.drain()
        self._dispatch()
        if self.leases.is_leader and time.monotonic() >= self._next_housekeeping:
            self._next_housekeeping = time.monotonic() + defaults.HOUSEKEEPING_INTERVAL_S
            self.close_stable()
            self.prune()

    def prune(self) -> int:
        """Retention: forget executions older than defaults.RETENTION_DAYS (incidents stay)."""
        return self.store.prune(self.clock() - timedelta(days=defaults.RETENTION_DAYS))

    def close_stable(self) -> list[int]:
        """Close incidents that stayed healthy for the stability window after their fix,
        and remember each target's image and environment as last-known-good (again: it was
        first recorded when the fix validated)."""
        window = timedelta(seconds=self.config.stability_window_s)
        closed = []
        for incident in self.store.closable(self.clock() - window):
            self.store.close_incident(incident.id)
            closed.append(incident.id)
            log.info("incident %s stayed healthy for %.0fs: closed", incident.id,
                     window.total_seconds(), extra={"incident_id": incident.id})
            if incident.target:
                self._record_last_known_good(incident.target, incident.labels)
        return closed

    def _record_last_known_good(self, name: str,
                                labels: Mapping[str, str] | None = None) -> None:
        """The target's image id, environment and config files, as they are now; `labels`
        (the alert's) pick the replica of a Swarm service, as for the run itself: without
        them a service with several replicas has none to read."""
        from remediator.adapters.docker_runtime import last_known_good_snapshot

        target = self.config.target(name)
        if target is None:
            return
        target = target.for_alert(labels or {})
        try:
            snapshot = last_known_good_snapshot(self.runtime.call, target)
        except RemediatorError as exc:
            log.warning("last-known-good of %s not recorded: %s", name, exc)
            return
        if snapshot is not None:
            image, config = snapshot
            self.store.record_last_known_good(name, image, config)

    # -- executions -----------------------------------------------------------------------
    @property
    def paused(self) -> bool:
        return self.store.get_setting("paused", "0") == "1"

    def _log_interrupted(self) -> None:
        """Executions left `running` are taken over once their lease runs out (at once
        when it was this replica's: the same replica id) and resumed with their stored
        steps; each says so when it is (run_execution). Here: how many there are."""
        running = self.store.executions_in_state(ExecutionState.RUNNING.value)
        if running:
            log.info("%d execution(s) running or interrupted: each is resumed once its "
                     "lease runs out", len(running))

    def _dispatch(self) -> None:
        """Start what may start: one execution per target, and one replica of a service
        at a time (blast radius), oldest first."""
        self._busy = {key: f for key, f in self._busy.items() if not f.done()}
        rows = self.store.executions_in_state(ExecutionState.RUNNING.value,
                                              ExecutionState.PENDING.value)
        free = self.config.concurrency - len(set(self._busy.values()))
        for row in rows:
            if free <= 0:  # no run waits in the pool holding its target's lease
                break
            keys = self._exclusive_keys(row)
            if any(key in self._busy for key in keys):
                continue  # this process runs one on that target: the in-process guard
            if not self.leases.take_keys(keys):
                continue  # another replica runs one on that target (or this one's lease)
            future = self._pool.submit(self._run_logged, row, keys)
            free -= 1
            for key in keys:
                self._busy[key] = future

    @staticmethod
    def _exclusive_keys(row: Execution) -> tuple[str, ...]:
        service = row.alert.labels.get("service") if row.alert else None
        target = f"target:{row.target}"
        return (target, f"service:{service}") if service else (target,)

    def _run_logged(self, row: Execution, keys: tuple[str, ...]) -> None:
        try:
            self.run_execution(row, held=keys)
        except Exception:  # stored as the run's outcome when it was ours (run_execution)
            log.exception("execution %s crashed", row.id,
                          extra={"execution_id": row.id})

    def run_execution(self, row: Execution, *, held: tuple[str, ...] = ()
                      ) -> ExecutionResult | None:
        """Claim the execution (with a lease), run it and store its end. ``held``: the
        target's keys the dispatcher took already; otherwise they are taken here."""
        keys = self._exclusive_keys(row)
        if tuple(held) != keys and not self.leases.take_keys(keys):
            log.info("execution %s waits: another replica runs one on its target",
                     row.id, extra={"execution_id": row.id})
            return None
        run: RunLease | None = None
        try:
            run = self._claim(row, keys)
            if run is None:
                return None
            try:
                return self._run(row, run)
            except Exception as exc:
                self._crashed(row, run, exc)
                raise
        finally:
            if run is not None:
                self.leases.end(run)
            else:
                self.leases.release_keys(keys)

    def _mode(self, row: Execution) -> bool:
        """Whether a run starting now observes only (dry run)."""
        return row.dry_run or self.dry_run or self.paused or self.config.mode is Mode.OBSERVE

    def _claim(self, row: Execution, keys: tuple[str, ...]) -> RunLease | None:
        """Claim ``row`` for this replica under a lease; None when it is not ours to run
        (started elsewhere, cancelled, or its lease still another replica's)."""
        execution_id = row.id
        if self.playbooks.get(row.playbook) is None or self.config.target(row.target) is None:
            self.store.finish_execution(execution_id, ExecutionState.CANCELLED, "aborted",
                                        None, "playbook or target no longer configured", [])
            return None
        until = self.leases.run_until()
        if not self.store.claim_execution(execution_id, self._mode(row), from_state=row.state,
                                          owner=self.leases.replica_id, lease_until=until,
                                          now=self.leases.clock()):
            log.info("execution %s was taken or cancelled before it started; not run",
                     execution_id, extra={"execution_id": execution_id})
            return None
        if row.state == ExecutionState.RUNNING.value:
            log.warning("execution %s was interrupted (its lease ran out); resuming it on "
                        "replica %s", execution_id, self.leases.replica_id,
                        extra={"execution_id": execution_id})
        return self.leases.begin(execution_id, keys, until)

    def _run(self, row: Execution, run: RunLease) -> ExecutionResult | None:
        execution_id = row.id
        playbook = self.playbooks[row.playbook]
        target = self.config.target(row.target)
        assert target is not None  # _claim checked it
        alert = row.alert  # parsed once, at intake; the store returns it typed
        if alert is None:
            raise PayloadError(f"execution {execution_id}: its stored alert does not parse")
        target = target.for_alert(alert.labels)  # a Swarm service: the alerting replica
        # Read once claimed: a replica that had it before stored its last step by now.
        resume = [StepResult.from_dict(step.view()) for step in self.store.steps(execution_id)]
        # An execution started as an observation (paused, observe mode, a dry-run replay)
        # stays one when resumed after a crash: its fixes were only skipped, so acting now
        # would fix on a diagnosis nobody approved and skip half the fix. Its mode is
        # recorded at its first start; a resume may only turn acting into observing (pause).
        observed = any(step.status is StepStatus.SKIPPED_DRY_RUN for step in resume)
        dry_run = observed or self._mode(row)
        result = run_playbook(
            playbook, alert, target, self.runtime, dry_run=dry_run,
            on_step=self._recorder(execution_id, playbook, run),
            resume_from=resume or None,
            should_stop_fixing=self._resolved_check(row.incident_id, acting=not dry_run,
                                                    run=run),
        )
        if run.lost(self.leases.clock()):
            log.warning("execution %s stopped here (%s, %s): its end is left to the replica "
                        "that takes it over", execution_id, result.outcome.value, LOST_NOTE,
                        extra={"execution_id": execution_id})
            return result
        self._finish(execution_id, result, row.incident_id or None, alert.labels,
                     owner=self.leases.replica_id)
        return result

    def _crashed(self, row: Execution, run: RunLease, exc: Exception) -> None:
        """A crash is an outcome too (escalation must hear of it), when the run is still
        this replica's to end."""
        if run.lost(self.leases.clock()):
            return
        reason = f"internal error: {exc}"
        result = ExecutionResult(
            playbook=row.playbook, target=row.target, incident_key="",
            outcome=Outcome.FAILED, reason=reason, dry_run=row.dry_run)
        finished = self.store.finish_execution(row.id, ExecutionState.FINISHED,
                                               Outcome.FAILED.value, None, reason, [],
                                               pending=for_escalation(result),
                                               owner=self.leases.replica_id)
        if finished is not None:
            self.on_finished(finished, result)

    def _recorder(self, execution_id: int, playbook: Playbook,
                  run: RunLease | None = None) -> Callable[[StepResult], None]:
        positions = {step.id: index for index, step in enumerate(playbook.steps)}

        def record(step: StepResult) -> None:
            if run is not None and run.lost(self.leases.clock()):
                return  # the execution is another replica's to record now
            # The store checks the lease too: a write after a stall past it is refused.
            if not self.store.record_step(execution_id, positions.get(step.id, 999),
                                          StepRecord.from_dict(step.to_dict()),
                                          owner=self.leases.replica_id if run else ""):
                return
            if step.status.finished:
                self.metrics.step_duration.labels(action=step.action).observe(step.duration_s)
            log.info("execution %s step %s (%s): %s", execution_id, step.id, step.action,
                     step.status.value, extra={"execution_id": execution_id,
                                               "step_id": step.id})

        return record

    def _resolved_check(self, incident_id: int | None, acting: bool = True,
                        run: RunLease | None = None) -> Callable[[], bool | str]:
        def resolved() -> bool | str:
            """Why fixing should stop now (the runner's note says it), else False. Asked
            before every fix or mutating step: pause means pause, even mid-run (a run
            that started paused is a dry run already: its steps say what they would do).
            A run whose lease is gone stops too (outcome aborted, not stored: see _run)."""
            if run is not None and run.lost(self.leases.clock()):
                return LOST_NOTE
            if acting and self.paused:
                return PAUSED_NOTE
            if incident_id is None:
                return False
            incident = self.store.incident(incident_id)
            if incident is None:
                return False
            # A claimed incident is a human's: stop fixing it, as when it resolves.
            if incident.claimed_by:
                return f"incident claimed by {incident.claimed_by}"
            return RESOLVED_NOTE if incident.status == "resolved" else False

        return resolved

    def _finish(self, execution_id: int, result: ExecutionResult,
                incident_id: int | None = None,
                labels: Mapping[str, str] | None = None, owner: str = "") -> None:
        escalations = [e.to_dict() for e in result.escalations]
        # Fixed only if the run's validation ran and passed: a run whose fix was cut short
        # (a pause, a claim, the alert resolving) often skips its validation steps too.
        validated = (result.outcome is Outcome.SUCCESS and not result.dry_run
                     and result.validated)
        # The escalation it calls for is committed with its end (escalation picks it up from
        # there even if this process dies before on_finished runs), and so is the fix.
        finished = self.store.finish_execution(
            execution_id, ExecutionState.FINISHED, result.outcome.value, result.scenario,
            result.reason, escalations, pending=for_escalation(result),
            fixed_incident=incident_id if validated else None, owner=owner)
        if owner and finished is None:  # the lease went while the run ended: not ours
            log.warning("execution %s ended here (%s) after %s; its end is left to the "
                        "replica that took it over", execution_id, result.outcome.value,
                        LOST_NOTE, extra={"execution_id": execution_id})
            return
        self.metrics.executions.labels(playbook=result.playbook,
                                       outcome=result.outcome.value).inc()
        self.metrics.execution_duration.observe(result.duration_s)
        log.info("execution %s finished: %s (%s) in %.1fs", execution_id, result.outcome.value,
                 result.reason or "-", result.duration_s,
                 extra={"execution_id": execution_id, "playbook": result.playbook,
                        "target": result.target})
        if finished is not None:
            self.on_finished(finished, result)
        if validated:  # the playbook's validation passed: this is a known-good state
            try:
                self._record_last_known_good(result.target, labels)
            except Exception:  # the execution's outcome is stored: this must not change it
                log.exception("last-known-good of %s not recorded", result.target)



def for_escalation(result: ExecutionResult) -> dict[str, Any]:
    """What escalation needs of a finished run, stored with its end (steps are stored
    already, row by row): ExecutionResult.from_dict reads it back."""
    return {**result.to_dict(), "steps": []}
