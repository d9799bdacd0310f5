"""Make an out-of-memory kill of the gunicorn worker end the container, as Docker expects.

gunicorn's master (PID 1) would quietly fork a new worker after the kernel OOM-kills the
one loading the model, and the container would loop inside itself: never exiting, so
Docker never shows ``OOMKilled`` with exit code 137 -- the runbook's evidence for scenario
2. When the cgroup's ``oom_kill`` counter rose while a worker died, the master exits 137
instead (the code of a SIGKILLed process), and the restart policy takes it from there.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["OOM_EXIT_CODE", "OomWatch", "oom_kills"]

log = logging.getLogger("mobile_multimodal.server")

OOM_EXIT_CODE = 137
"""128 + SIGKILL: what a container whose main process the OOM killer took exits with."""

COUNTERS = (Path("/sys/fs/cgroup/memory.events"),  # cgroup v2
            Path("/sys/fs/cgroup/memory/memory.oom_control"))  # cgroup v1
"""Where this container's cgroup counts OOM kills (``oom_kill N``)."""


def oom_kills(paths: tuple[Path, ...] = COUNTERS) -> int | None:
    """OOM kills so far in this cgroup; None when no counter is readable."""
    for path in paths:
        try:
            text = path.read_text()
        except OSError:
            continue
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill" and value.strip().isdigit():
                return int(value)
    return None


class OomWatch:
    """A gunicorn ``child_exit`` hook: exit 137 when a worker died to the OOM killer."""

    def __init__(self, counter: Callable[[], int | None] = oom_kills,
                 exit: Callable[[int], Any] = os._exit) -> None:
        self._counter = counter
        self._exit = exit
        self.baseline = counter()

    def __call__(self, server: Any, worker: Any) -> None:
        if not getattr(server, "LISTENERS", None):
            return  # shutting down: workers exit on purpose
        now = self._counter()
        if now is None or self.baseline is None or now <= self.baseline:
            return
        log.error("Worker (pid:%s) was killed by the kernel OOM killer: out of memory while "
                  "serving or loading the model (%d OOM kill(s) in this container); exiting "
                  "%d so the container shows OOMKilled", getattr(worker, "pid", "?"),
                  now - self.baseline, OOM_EXIT_CODE)
        self._exit(OOM_EXIT_CODE)
