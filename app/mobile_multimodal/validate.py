"""``validate_model_file``: the runbook's "Model File Validation", run before every load.

Checks, in order: the file exists, is readable, is not empty, is a PyTorch zip; it loads
weights-only (no code ever runs) and is a well-formed checkpoint of this model's format
version; and its sha256 is the one the ``manifest.json`` beside it records. Each failure is
a typed ``ModelError`` whose message starts as the runbook greps ("FileNotFoundError",
"ValueError: The model file is corrupted", "PermissionError", ...).

A structural problem (truncated zip, old format) is reported before a checksum mismatch:
it says more about what to do. A file the manifest does not list (a converted checkpoint,
say) is loaded unverified, and says so (``checksum_ok`` is None).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mobile_multimodal.checkpoint import check_file, read_checkpoint, validate_checkpoint
from mobile_multimodal.errors import ModelFileMismatch, ModelFileUnreadable, ModelPermissionDenied
from mobile_multimodal.files import file_sha256
from mobile_multimodal.manifest import manifest_sha256

__all__ = ["ValidatedFile", "validate_model_file"]


@dataclass(frozen=True)
class ValidatedFile:
    """A checkpoint that passed validation, with what its checksum check found."""

    path: str
    raw: dict[str, Any]
    sha256: str
    expected_sha256: str | None

    @property
    def checksum_ok(self) -> bool | None:
        """True when it matches the manifest; None when the manifest does not list it."""
        return None if self.expected_sha256 is None else self.sha256 == self.expected_sha256


def _sha256(path: Path) -> str:
    try:
        return file_sha256(path)
    except PermissionError:
        raise ModelPermissionDenied(str(path)) from None
    except OSError as exc:
        raise ModelFileUnreadable(str(path), exc.strerror or str(exc)) from None


def validate_model_file(model_path: str | os.PathLike[str]) -> ValidatedFile:
    """Validate ``model_path`` before loading it; raises a ``ModelError`` subclass."""
    path = Path(model_path)
    check_file(path)  # exists, readable, non-empty, a zip
    actual = _sha256(path)
    expected = manifest_sha256(path)
    raw = read_checkpoint(path)  # weights-only
    validate_checkpoint(raw, str(path))
    if expected is not None and actual != expected:
        raise ModelFileMismatch(str(path), expected, actual)
    return ValidatedFile(str(path), raw, actual, expected)

