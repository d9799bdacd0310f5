"""Delivers the outbox: its own thread, one attempt per channel at a time, retries scheduled.

The dispatcher never runs in an execution's thread, and a channel that hangs or is down
only holds its own deliveries: each attempt runs in a small pool, at most one per channel,
and a retryable failure is stored with its next attempt time (core.backoff) instead of
being waited for. A stopped process leaves nothing behind: on start, deliveries that were
mid-send are due again.
"""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from datetime import timedelta

from remediator.adapters.notifiers import (
    AttemptOutcome,
    Channel,
    HttpTransport,
    attempt_delivery,
    build_channel,
)
from remediator.background import BackgroundLoop
from remediator.core import defaults
from remediator.core.clock import Clock, utc_now
from remediator.core.escalation_eval import EscalationPolicy
from remediator.escalation.outbox import DueDelivery, Outbox
from remediator.metrics import ServiceMetrics

__all__ = ["Dispatcher"]

log = logging.getLogger("remediator.outbox")


class Dispatcher:
    """Sends due deliveries; ``deliver_due`` is the synchronous form tests drive."""

    def __init__(self, outbox: Outbox, policy: EscalationPolicy, metrics: ServiceMetrics, *,
                 env: Mapping[str, str] | None = None, transport: HttpTransport | None = None,
                 clock: Clock = utc_now, rand: Callable[[], float] = random.random,
                 owner: str = "") -> None:
        self.outbox = outbox
        self.owner = owner  # this replica: its claims on deliveries name it
        self.policy = policy
        self.metrics = metrics
        self.env = os.environ if env is None else env
        self.transport = transport or HttpTransport()
        self.clock = clock
        self.rand = rand
        self._busy: dict[str, Future[None]] = {}
        self._pool: ThreadPoolExecutor | None = None
        self._loop = BackgroundLoop("outbox", self._round, interval_s=defaults.OUTBOX_MAX_IDLE_S,
                                    metrics=metrics, log=log)

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        # Its own claims, left by this replica's previous life (the same replica id); those
        # of a replica that died are recovered by the leader once they expire.
        recovered = self.outbox.recover_interrupted(self.clock(), owner=self.owner)
        if recovered:
            log.warning("%d notification deliveries were interrupted; trying them again",
                        recovered)
        self._pool = ThreadPoolExecutor(defaults.OUTBOX_PARALLEL_CHANNELS,
                                        thread_name_prefix="notify")
        self._loop.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop taking work and let attempts in flight finish (up to ``timeout``)."""
        self._loop.stop(timeout)
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            # An attempt in flight records its own outcome; one that was only queued is
            # still `sending` and is taken up again by the next start.
            wait(list(self._busy.values()), timeout)

    def wake(self) -> None:
        self._loop.wake()

    def _round(self) -> float:
        self._submit_due()
        return self._idle_seconds()

    def _idle_seconds(self) -> float:
        due = self.outbox.next_attempt_at()
        if due is None:
            return defaults.OUTBOX_MAX_IDLE_S
        return min(defaults.OUTBOX_MAX_IDLE_S, max(0.01, (due - self.clock()).total_seconds()))

    def _submit_due(self) -> None:
        self._busy = {name: f for name, f in self._busy.items() if not f.done()}
        if self._pool is None or self._loop.stopping:
            return
        for due in self._claim_due(busy=self._busy):
            future = self._pool.submit(self.attempt, due)
            future.add_done_callback(lambda _: self._loop.wake())
            self._busy[due.channel] = future

    # -- attempts -------------------------------------------------------------------------
    def deliver_due(self) -> int:
        """Attempt every delivery due now, in this thread; returns how many were tried."""
        tried = 0
        while batch := self._claim_due():
            for due in batch:
                self.attempt(due)
                tried += 1
        return tried

    def _claim_due(self, busy: Mapping[str, object] | None = None) -> list[DueDelivery]:
        """Claim what is due for this replica: another replica never sends it too."""
        now = self.clock()
        return self.outbox.claim_due(now, busy or (), owner=self.owner,
                                     until=now + timedelta(seconds=defaults.DELIVERY_CLAIM_S))

    def attempt(self, due: DueDelivery) -> None:
        """One attempt of one delivery; its outcome is stored whatever happens."""
        try:
            gate = self.outbox.gate(due, self.clock())
            if gate.action == "wait" and gate.until is not None:
                self.outbox.postpone(due, gate.until, self.clock())
                return
            if gate.action == "skip":
                self._record(due, AttemptOutcome("skipped", gate.reason))
                return
            channel = self._channel(due)
            if channel is None:
                self._record(due, AttemptOutcome(
                    "failed", f"channel {due.channel} is no longer in team {due.team} "
                              f"({self.policy.source})"))
                return
            started = max(due.accepted_at, gate.since) if gate.since else due.accepted_at
            age = (self.clock() - started).total_seconds()
            outcome = attempt_delivery(
                channel, due.message, attempt=due.attempts + 1, rand=self.rand, age=age,
                give_up_after=self.policy.give_up_after.total_seconds())
            self._record(due, outcome)
        except Exception as exc:  # a store error: leave the row to the restart recovery
            log.exception("delivery %s on %s could not be recorded: %s", due.id, due.channel,
                          type(exc).__name__)

    def _record(self, due: DueDelivery, outcome: AttemptOutcome) -> None:
        self.outbox.record(due, outcome, self.clock())
        self.metrics.notifications.labels(channel=due.channel, outcome=outcome.status).inc()
        log.info("notification %s (%s) via %s: %s%s", due.notification_id, due.kind,
                 due.channel, outcome.status, f" ({outcome.reason})" if outcome.reason else "")

    def _channel(self, due: DueDelivery) -> Channel | None:
        team = self.policy.teams.get(due.team)
        spec = next((c for c in (team.channels if team else ()) if c.name == due.channel),
                    None)
        return build_channel(spec, self.env, self.transport) if spec else None
