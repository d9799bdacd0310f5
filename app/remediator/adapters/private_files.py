"""State files that hold secrets (the store, the webhook token, generated configs): created
owner-only (0600) from the first byte, never created with the umask's mode and chmodded
after (a window in which another local user can open them)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["PRIVATE_MODE", "create_private", "open_private", "write_private"]

PRIVATE_MODE = 0o600
"""Owner read/write only."""


def open_private(path: Path, flags: int) -> int:
    """A descriptor of ``path`` opened with ``flags``, the file 0600 whether new or not."""
    # O_NOFOLLOW: a link planted where the file will be is refused, not written through.
    fd = os.open(path, flags | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0), PRIVATE_MODE)
    try:
        os.fchmod(fd, PRIVATE_MODE)  # an existing file from an older run is tightened too
    except BaseException:
        os.close(fd)
        raise
    return fd


def create_private(path: Path) -> None:
    """Make sure ``path`` exists with mode 0600 (its content, if any, untouched)."""
    os.close(open_private(path, os.O_RDWR | os.O_CREAT))


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path``, a file with mode 0600 from its creation."""
    fd = open_private(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
