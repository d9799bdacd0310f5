"""One background loop, written once: every thread of `remediator serve` that does work
in rounds (the worker, the outbox dispatcher, the escalation timer, reconciliation, the
inbox writer) runs on it.

A round calls the owner's ``tick``; then the loop sleeps until the interval has passed or
someone calls :meth:`BackgroundLoop.wake`. ``tick`` may return how long to sleep this time
(the outbox: until the next delivery is due) instead of the interval. A tick that raises is
logged and counted, and the loop backs off (the interval doubled per failure in a row, up
to ``error_backoff_max_s``) instead of failing again at full speed; a wake still runs a
round at once, so work that arrives is not held back by an earlier failure. The loop
outlives any one bad round: only :meth:`BackgroundLoop.stop` ends it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from remediator.core import defaults
from remediator.metrics import ServiceMetrics

__all__ = ["BackgroundLoop", "Tick"]

Tick = Callable[[], float | None]
"""One round of a loop's work; returns seconds to sleep before the next, or None (interval)."""


class BackgroundLoop:
    """A named daemon thread running ``tick`` in rounds; start, wake, stop."""

    def __init__(self, name: str, tick: Tick, *, interval_s: float,
                 coalesce_s: float = 0.0, final_tick: bool = False,
                 error_backoff_max_s: float = defaults.LOOP_ERROR_BACKOFF_MAX_S,
                 metrics: ServiceMetrics | None = None,
                 log: logging.Logger | None = None) -> None:
        self.name = name
        self.interval_s = interval_s
        self.coalesce_s = coalesce_s  # after a wake: let a burst gather before the round
        self.final_tick = final_tick  # one last round after stop (drain what is queued)
        self.error_backoff_max_s = max(error_backoff_max_s, interval_s)
        self.metrics = metrics
        self.failures = 0
        """Rounds in a row that raised (0 after a good one)."""
        self.last_run: float | None = None
        """Unix time the last round without an error ended."""
        self._tick = tick
        self._log = log or logging.getLogger(f"remediator.{name}")
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._woken = True
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError(f"background loop {self.name} is started already")
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = defaults.LOOP_STOP_TIMEOUT_S) -> bool:
        """Ask the loop to end and wait up to ``timeout_s``; True once its thread ended."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            return not self._thread.is_alive()
        return True

    def wake(self) -> None:
        """Run a round now (after ``coalesce_s``) instead of when the interval has passed."""
        self._wake.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    @property
    def woken(self) -> bool:
        """Whether the current round was asked for by a wake (the first round counts)."""
        return self._woken

    # -- rounds ---------------------------------------------------------------------------
    def run_once(self) -> float:
        """One round, errors caught, counted and logged; returns the seconds to sleep."""
        try:
            wanted = self._tick()
        except Exception:  # the loop must outlive anything one round throws
            self.failures += 1
            pause = self._backoff()
            self._log.exception("%s round failed (%d in a row); next round in %.1fs or when "
                                "woken", self.name, self.failures, pause)
            if self.metrics is not None:
                self.metrics.loop_errors.labels(loop=self.name).inc()
            return pause
        self.failures = 0
        self.last_run = time.time()
        if self.metrics is not None:
            self.metrics.loop_last_run.labels(loop=self.name).set(self.last_run)
        return self.interval_s if wanted is None else max(0.0, wanted)

    def _backoff(self) -> float:
        return min(self.error_backoff_max_s,
                   self.interval_s * 2 ** min(self.failures - 1, 32))

    def _run(self) -> None:
        self._woken = True
        while not self._stop.is_set():
            pause = self.run_once()
            self._woken = self._wake.wait(pause)
            if self._woken and self.coalesce_s and not self._stop.is_set():
                self._stop.wait(self.coalesce_s)
            self._wake.clear()
        if self.final_tick:
            self.run_once()
