"""File helpers shared by checkpoints, manifests and downloads (no torch here).

Every model file and manifest is written the same way: into a temp file in the target's
directory, fsynced, then ``os.replace``d over the target, so a reader (the server, a
restart) sees either the old file or the new one, never half of one.
"""

from __future__ import annotations

import errno
import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from mobile_multimodal.errors import ModelDiskFull, ModelError, ModelPermissionDenied

__all__ = ["atomic_file", "file_sha256", "write_errors"]


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@contextmanager
def write_errors(path: Path) -> Iterator[None]:
    """Translate OS errors of writing ``path`` into ModelErrors (disk full, permission)."""
    try:
        yield
    except ModelError:
        raise  # already translated (some are OSError subclasses too)
    except PermissionError:
        raise ModelPermissionDenied(str(path)) from None
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise ModelDiskFull(str(path)) from None
        raise ModelError(f"OSError: cannot write {path}: {exc.strerror or exc}", str(path)
                         ) from None


@contextmanager
def atomic_file(target: Path) -> Iterator[BinaryIO]:
    """A binary temp file beside ``target`` that replaces it when the block exits cleanly.

    Raising inside the block (a checksum mismatch, a full disk) removes the temp file and
    leaves ``target`` untouched.
    """
    with write_errors(target):
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as handle:
                yield handle
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
