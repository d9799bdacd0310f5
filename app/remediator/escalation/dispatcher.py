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
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from datetime import UTC, datetime, timedelta
from typing import Final

from remediator.adapters.notifiers import (
    AttemptOutcome,
    Channel,
    HttpTransport,
    attempt_delivery,
    build_channel,
)
from remediator.core import defaults
from remediator.core.escalation_policy import EscalationPolicy
from remediator.errors import StoreError
from remediator.escalation.outbox import DueDelivery, Outbox
from remediator.metrics import ServiceMetrics

__all__ = ["Clock", "Dispatcher", "utc_clock"]

log = logging.getLogger("remediator.outbox")

Clock = Callable[[], datetime]

MAX_IDLE_S: Final = 5.0
"""Longest the dispatcher sleeps without being woken (rows added by another process)."""

PARALLEL_CHANNELS: Final = 4
"""Channels attempted at the same time; a slow one never holds the others."""


def utc_clock() -> datetime:
    return datetime.now(UTC)


class Dispatcher:
    """Sends due deliveries; ``deliver_due`` is the synchronous form tests drive."""

    def __init__(self, outbox: Outbox, policy: EscalationPolicy, metrics: ServiceMetrics, *,
                 env: Mapping[str, str] | None = None, transport: HttpTransport | None = None,
                 clock: Clock = utc_clock, rand: Callable[[], float] = random.random,
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
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        # Its own claims, left by this replica's previous life (the same replica id); those
        # of a replica that died are recovered by the leader once they expire.
        recovered = self.outbox.recover_interrupted(self.clock(), owner=self.owner)
        if recovered:
            log.warning("%d notification deliveries were interrupted; trying them again",
                        recovered)
        self._pool = ThreadPoolExecutor(PARALLEL_CHANNELS, thread_name_prefix="notify")
        self._thread = threading.Thread(target=self._loop, name="outbox", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop taking work and let attempts in flight finish (up to ``timeout``)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            # An attempt in flight records its own outcome; one that was only queued is
            # still `sending` and is taken up again by the next start.
            wait(list(self._busy.values()), timeout)

    def wake(self) -> None:
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._submit_due()
            except Exception:  # the loop must outlive any one bad round
                log.exception("outbox round failed; retrying")
            self._wake.wait(self._idle_seconds())
            self._wake.clear()

    def _idle_seconds(self) -> float:
        try:
            due = self.outbox.next_attempt_at()
        except StoreError:  # the database away: look again later (this thread must live)
            return MAX_IDLE_S
        if due is None:
            return MAX_IDLE_S
        return min(MAX_IDLE_S, max(0.01, (due - self.clock()).total_seconds()))

    def _submit_due(self) -> None:
        self._busy = {name: f for name, f in self._busy.items() if not f.done()}
        if self._pool is None or self._stop.is_set():
            return
        for due in self._claim_due(busy=self._busy):
            future = self._pool.submit(self.attempt, due)
            future.add_done_callback(lambda _: self._wake.set())
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
