"""The one fake clock and the one fake runtime every test uses.

    clock = FakeClock()                       # 2026-11-29 12:00 UTC, monotonic 0.0
    run_playbook(..., clock=clock.monotonic, sleep=clock.sleep, now=clock.now)
    service = build_service(..., clock=clock)  # a core.clock.Clock: call it for now
    clock.advance(minutes=10)

    runtime = FakeRuntime(docker__logs={"output": "ERROR FileNotFoundError"})  # a table
    runtime = model_app()                      # answers like the healthy model server
    runtime.actions() == ["docker.logs", "docker.restart", "http.check"]
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from remediator.core.targets import Target
from remediator.errors import ActionFailed

__all__ = ["MODEL_APP", "T0", "Call", "FakeClock", "FakeRuntime", "Handler", "model_app"]

T0 = datetime(2026, 11, 29, 12, 0, 0, tzinfo=UTC)
"""Where a FakeClock's wall time starts."""

Handler = dict[str, Any] | Exception | Callable[[dict[str, Any]], dict[str, Any]]
"""An action's answer: outputs, an exception to raise, or a function of the args."""


class FakeClock:
    """Time that moves only when slept or told to: monotonic seconds (``t``) and a UTC wall
    clock that moves with them. Calling it (or ``now()``) is a :data:`core.clock.Clock`."""

    def __init__(self, start: datetime = T0) -> None:
        self.start = start
        self.t = 0.0
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def monotonic(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self.t += seconds

    def now(self) -> datetime:
        with self._lock:
            return self.start + timedelta(seconds=self.t)

    __call__ = now

    def advance(self, **delta: float) -> datetime:
        """Move time on by ``timedelta(**delta)``; returns the new now."""
        with self._lock:
            self.t += timedelta(**delta).total_seconds()
        return self.now()


class Call(NamedTuple):
    """One action the runtime was asked for (its args as they were then)."""

    action: str
    args: dict[str, Any]
    target: Target
    timeout: float


class FakeRuntime:
    """Docker and HTTP stand-in answering actions from a table (``docker__logs=...`` is
    ``docker.logs``); a list answers successive calls (its last one ever after), an action
    not in the table answers ``{"output": "<action> done"}``. Records every call.

    ``healthy = False`` makes every http.check fail as a degraded app answers; ``on_call``
    is told of each action before it is answered (to pause, claim or fail mid-run)."""

    def __init__(self, clock: FakeClock | None = None, *,
                 answers: Mapping[str, Handler | list[Handler]] | None = None,
                 on_call: Callable[[str], None] | None = None,
                 **handlers: Handler | list[Handler]) -> None:
        self.clock = clock
        self.handlers: dict[str, Handler | list[Handler]] = {
            **(answers or {}), **{name.replace("__", "."): h for name, h in handlers.items()}}
        self.healthy = True
        self.on_call = on_call
        self.calls: list[Call] = []

    def call(self, action: str, args: dict[str, Any], target: Target,
             timeout: float) -> dict[str, Any]:
        self.calls.append(Call(action, copy.deepcopy(args), target, timeout))
        if self.on_call is not None:
            self.on_call(action)
        if action == "http.check" and not self.healthy:
            raise ActionFailed("/health answered 503 (degraded)")
        handler = self.handlers.get(action, {"output": f"{action} done"})
        if isinstance(handler, list):
            handler = handler.pop(0) if len(handler) > 1 else handler[0]
        if isinstance(handler, Exception):
            raise handler
        if callable(handler):
            return handler(args)
        return dict(handler)

    def actions(self) -> list[str]:
        return [call.action for call in self.calls]


MODEL_APP: Mapping[str, Handler] = {
    "http.check": {"ok": True, "status_code": 200, "output": "GET /health: 200",
                   "body": {"status": "healthy", "model_loaded": True,
                            "caption": "a red square", "variant": "fp32"}},
    "docker.logs": {"output": "ERROR Model load failed: FileNotFoundError", "lines": 1},
    "docker.inspect": {"output": "running", "running": True, "image": "mobile-multimodal:0.1.0",
                       "env": ["MODEL_DIR=/app/models"]},
}
"""The model server after a lost model file: its logs say so, its checks pass once fixed."""


def model_app(clock: FakeClock | None = None, **handlers: Handler | list[Handler]
              ) -> FakeRuntime:
    """A FakeRuntime answering like :data:`MODEL_APP`, ``handlers`` overriding."""
    return FakeRuntime(clock, answers={**MODEL_APP, **{name.replace("__", "."): handler
                                                       for name, handler in handlers.items()}})
