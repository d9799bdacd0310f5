"""http.check and prometheus.query keep to the step's timeout (fake transport, fake clock)."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from remediator.adapters.http import REQUEST_TIMEOUT, HttpActions
from remediator.core.targets import Target
from remediator.errors import ActionTimeout

TARGET = Target(name="app-prod", selector={}, container="app-prod",
                base_url="http://app-prod:8080")


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def monotonic(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += seconds


class RefusingServer:
    """Every request takes `takes` seconds of the fake clock and is refused."""

    def __init__(self, clock: Clock, takes: float) -> None:
        self.clock, self.takes = clock, takes
        self.timeouts: list[float] = []

    def request(self, method: str, url: str, **kwargs: Any) -> Any:
        self.timeouts.append(kwargs["timeout"])
        self.clock.t += min(self.takes, kwargs["timeout"])
        raise requests.ConnectionError("refused")


def actions(clock: Clock, server: RefusingServer) -> HttpActions:
    return HttpActions("http://prometheus:9090", client=server,  # type: ignore[arg-type]
                       sleep=clock.sleep, clock=clock.monotonic)


def test_http_check_stops_retrying_at_the_step_timeout_and_says_it_timed_out() -> None:
    clock = Clock()
    server = RefusingServer(clock, takes=0.1)
    with pytest.raises(ActionTimeout, match=r"within the step timeout of 0\.5s"):
        actions(clock, server).call("http.check", {"path": "/health", "retries": 30,
                                                   "interval": 0.01}, TARGET, 0.5)
    assert len(server.timeouts) < 31  # the remaining retries were not fired
    assert clock.t <= 0.5 + 1e-9


def test_http_check_caps_each_request_at_the_time_left() -> None:
    clock = Clock()
    server = RefusingServer(clock, takes=60.0)  # a server that never answers
    with pytest.raises(ActionTimeout):
        actions(clock, server).call("http.check", {"path": "/health", "retries": 3,
                                                   "interval": 1.0}, TARGET, 7.0)
    assert server.timeouts == [REQUEST_TIMEOUT, 1.0]  # 5 s, a 1 s pause, the last 1 s
    assert clock.t == pytest.approx(7.0)


def test_http_check_that_fails_in_time_keeps_its_evidence() -> None:
    clock = Clock()
    server = RefusingServer(clock, takes=0.1)
    out = actions(clock, server).call("http.check", {"path": "/health", "retries": 1,
                                                     "interval": 0.1}, TARGET, 10.0)
    assert out["ok"] is False and "after 2 attempt(s)" in out["output"]


def test_prometheus_query_is_bounded_by_the_step_timeout() -> None:
    clock = Clock()

    class Silent:
        def __init__(self) -> None:
            self.timeouts: list[float] = []

        def request(self, method: str, url: str, **kwargs: Any) -> Any:
            self.timeouts.append(kwargs["timeout"])
            raise requests.ReadTimeout("read timed out")

    client = Silent()
    http = HttpActions("http://prometheus:9090", client=client,  # type: ignore[arg-type]
                       clock=clock.monotonic)
    with pytest.raises(ActionTimeout, match=r"did not answer within 0\.25s"):
        http.call("prometheus.query", {"query": "up"}, TARGET, 0.25)
    assert client.timeouts == [0.25]
