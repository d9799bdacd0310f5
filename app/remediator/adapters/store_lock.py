"""One `remediator serve` per store: an OS lock on a file beside the database.

Two servers on one SQLite file would both dispatch the same executions and both send the
same pages. `serve` takes an exclusive ``flock`` on ``<db>.lock`` before anything else and
holds it for the life of the process (gunicorn's worker inherits it by fork); the file
records the holder's pid so the refusal can name it. The kernel drops the lock when the
process dies, however it dies: a stale file never blocks a restart. The CLI's other
commands (pause, executions, report) and gunicorn's worker do not take it: they work on
the store while `serve` runs.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from typing import Final

from remediator.adapters.private_files import open_private
from remediator.errors import StoreError

__all__ = ["LOCK_SUFFIX", "StoreLock", "lock_store"]

LOCK_SUFFIX: Final = ".lock"


class StoreLock:
    """A held lock; released by :meth:`release` or when the process exits."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the last descriptor drops the flock
            self._fd = None


def lock_store(db_path: str | Path) -> StoreLock | None:
    """Take the store's lock or raise StoreError naming the pid that holds it and the
    lock file. None for an in-memory store (nothing to share)."""
    if str(db_path) == ":memory:":
        return None
    path = Path(f"{db_path}{LOCK_SUFFIX}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = open_private(path, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder(fd)
        os.close(fd)
        raise StoreError(
            f"the store {db_path} is in use by another `remediator serve` (pid {holder}, "
            f"holding {path}); stop that one first, or give this one its own --db") from None
    except OSError as exc:
        os.close(fd)
        raise StoreError(f"cannot lock the store {db_path} ({path}): {exc}") from exc
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return StoreLock(path, fd)


def _holder(fd: int) -> str:
    with contextlib.suppress(OSError, ValueError):
        text = os.pread(fd, 32, 0).decode().strip()
        if text:
            return str(int(text))
    return "unknown"
