"""The one background loop every thread of `remediator serve` runs on: interval, wake,
stop, backoff after an error, and the last-run metric."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest
from prometheus_client import CollectorRegistry

from remediator.background import BackgroundLoop
from remediator.metrics import ServiceMetrics


class Ticks:
    """A tick that records when it ran and can be told to fail."""

    def __init__(self, failing: int = 0, sleep: float | None = None) -> None:
        self.at: list[float] = []
        self.failing = failing
        self.sleep = sleep
        self.ran = threading.Event()

    def __call__(self) -> float | None:
        self.at.append(time.monotonic())
        self.ran.set()
        if self.failing:
            self.failing -= 1
            raise RuntimeError("store is gone")
        return self.sleep


def until(check: Callable[[], bool], within: float = 5.0) -> bool:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


@pytest.fixture
def loops() -> Iterator[list[BackgroundLoop]]:
    started: list[BackgroundLoop] = []
    yield started
    for loop in started:
        loop.stop(2)


def started(loops: list[BackgroundLoop], tick: Ticks, **options: object) -> BackgroundLoop:
    loop = BackgroundLoop("test-loop", tick, **options)  # type: ignore[arg-type]
    loops.append(loop)
    loop.start()
    return loop


def test_a_wake_runs_a_round_long_before_the_interval(loops: list[BackgroundLoop]) -> None:
    tick = Ticks()
    loop = started(loops, tick, interval_s=60.0)
    assert until(lambda: len(tick.at) == 1)
    woken_at = time.monotonic()
    loop.wake()
    assert until(lambda: len(tick.at) == 2, within=2)
    assert tick.at[1] - woken_at < 1.0
    assert loop.woken


def test_without_a_wake_it_runs_every_interval_or_when_the_tick_asks(
        loops: list[BackgroundLoop]) -> None:
    by_interval = Ticks()
    started(loops, by_interval, interval_s=0.05)
    asked = Ticks(sleep=0.05)
    started(loops, asked, interval_s=60.0)
    assert until(lambda: len(by_interval.at) >= 4 and len(asked.at) >= 4)


def test_stop_ends_the_thread_and_no_round_runs_after(loops: list[BackgroundLoop]) -> None:
    tick = Ticks()
    loop = started(loops, tick, interval_s=60.0)
    assert tick.ran.wait(5)
    assert loop.stop(2)
    assert loop.stopping
    count = len(tick.at)
    loop.wake()
    time.sleep(0.1)
    assert len(tick.at) == count == 1


def test_a_final_tick_runs_once_after_stop(loops: list[BackgroundLoop]) -> None:
    tick = Ticks()
    loop = started(loops, tick, interval_s=60.0, final_tick=True)
    assert tick.ran.wait(5)
    assert loop.stop(2)
    assert len(tick.at) == 2


def test_a_failing_tick_backs_off_doubling_up_to_the_cap_then_recovers(
        loops: list[BackgroundLoop], caplog: pytest.LogCaptureFixture) -> None:
    tick = Ticks(failing=4)
    loop = started(loops, tick, interval_s=0.05, error_backoff_max_s=0.3)
    assert until(lambda: len(tick.at) >= 6)
    gaps = [later - earlier for earlier, later in zip(tick.at, tick.at[1:], strict=False)]
    # after failure n the loop sleeps interval * 2**(n-1), capped: 0.05, 0.1, 0.2, 0.3
    for gap, wanted in zip(gaps, [0.05, 0.1, 0.2, 0.3], strict=False):
        assert wanted * 0.9 <= gap < wanted + 0.25
    assert gaps[4] < 0.05 + 0.25  # a good round: back to the interval
    assert loop.failures == 0
    assert any("test-loop round failed (4 in a row)" in r.getMessage() for r in caplog.records)


def test_a_wake_cuts_an_error_backoff_short(loops: list[BackgroundLoop]) -> None:
    tick = Ticks(failing=1)
    loop = started(loops, tick, interval_s=30.0)
    assert until(lambda: loop.failures == 1)
    loop.wake()
    assert until(lambda: len(tick.at) == 2, within=2)
    assert loop.failures == 0


def test_last_run_and_errors_are_metrics(loops: list[BackgroundLoop]) -> None:
    registry = CollectorRegistry()
    tick = Ticks(failing=1)
    before = time.time()
    loop = started(loops, tick, interval_s=0.02, metrics=ServiceMetrics(registry))
    assert until(lambda: loop.last_run is not None)
    assert registry.get_sample_value("remediator_loop_errors_total",
                                     {"loop": "test-loop"}) == 1
    last = registry.get_sample_value("remediator_loop_last_run_timestamp_seconds",
                                     {"loop": "test-loop"})
    assert last is not None and before <= last <= time.time()


def test_a_loop_starts_once() -> None:
    loop = BackgroundLoop("twice", Ticks(), interval_s=60.0)
    loop.start()
    try:
        with pytest.raises(RuntimeError, match="started already"):
            loop.start()
    finally:
        loop.stop(2)
