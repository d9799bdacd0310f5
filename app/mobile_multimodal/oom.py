"""Make an out-of-memory kill of the gunicorn worker end the container, as Docker expects.

gunicorn's master (PID 1) would quietly fork a new worker after the kernel OOM-kills the
one loading the model, and the container would loop inside itself: never exiting, so
Docker never shows ``OOMKilled`` with exit code 137 -- the runbook's evidence for scenario
2. When the cgroup's ``oom_kill`` counter rose while a worker died, the master exits 137
instead (the code of a SIGKILLed process), and the restart policy takes it from there.

Before exiting, the master counts the kill in a marker file in the container's own
filesystem (which a ``docker restart`` keeps and a recreate drops). The next start reads it
and exports ``model_oom_restarts``: the app says "my last load was OOM-killed" within a
scrape of starting again, instead of Prometheus having to sit out a crash loop; the first
load that serves the primary again clears it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["OOM_EXIT_CODE", "OOM_MARKER", "OomWatch", "clear_oom_restarts", "oom_kills",
           "oom_restarts", "record_oom_restart"]

log = logging.getLogger("mobile_multimodal.server")

OOM_EXIT_CODE = 137
"""128 + SIGKILL: what a container whose main process the OOM killer took exits with."""

OOM_MARKER = Path(os.environ.get("MODEL_OOM_MARKER", "/tmp/mobile-multimodal.oom-restarts"))
"""Where the master counts OOM kills across restarts of this container (MODEL_OOM_MARKER)."""

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


def oom_restarts(marker: Path = OOM_MARKER) -> int:
    """OOM kills recorded since the primary model last served (0: none, or unreadable)."""
    try:
        text = marker.read_text().strip()
    except OSError:
        return 0
    return int(text) if text.isdigit() else 0


def record_oom_restart(marker: Path = OOM_MARKER) -> None:
    """Count one more OOM kill in the marker; a failure to write is logged, not raised (the
    exit must happen whatever the filesystem says)."""
    try:
        marker.write_text(f"{oom_restarts(marker) + 1}\n")
    except OSError as exc:
        log.warning("Could not record the OOM kill in %s: %s", marker, exc)


def clear_oom_restarts(marker: Path = OOM_MARKER) -> None:
    """The primary serves again: the OOM kills are history."""
    try:
        marker.unlink(missing_ok=True)
    except OSError as exc:
        log.warning("Could not clear %s: %s", marker, exc)


class OomWatch:
    """A gunicorn ``child_exit`` hook: exit 137 when a worker died to the OOM killer."""

    def __init__(self, counter: Callable[[], int | None] = oom_kills,
                 exit: Callable[[int], Any] = os._exit,
                 marker: Path | None = None) -> None:
        self._counter = counter
        self._exit = exit
        self._marker = OOM_MARKER if marker is None else marker
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
        record_oom_restart(self._marker)
        self._exit(OOM_EXIT_CODE)
