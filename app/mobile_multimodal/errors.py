"""Every error the model package raises on purpose, in one tree.

    ModelError                      base; ``reason`` labels model_load_failures_total{reason}
    ├── ModelFileMissing            file_missing       (also FileNotFoundError)
    ├── ModelFileCorrupted          corrupted          (also ValueError)
    │   ├── ModelFileUnsafe         corrupted          pickle payload refused, never executed
    │   └── ModelFileMismatch       checksum_mismatch  sha256 differs from the manifest's
    ├── ModelFileUnreadable         io_error           (also OSError) reading the file failed
    ├── ModelFormatTooOld           old_format         names scripts/convert_model.py
    ├── ModelFormatTooNew           new_format         written by a newer release
    ├── ModelPermissionDenied       permission_denied  (also PermissionError)
    ├── ModelConfigError            config_invalid     bad config file, unknown model name
    ├── ModelDeviceError            cuda_unavailable   CUDA requested but not available
    ├── ModelOutOfMemory            out_of_memory      (also MemoryError, and torch's allocators')
    ├── ModelDependencyError        import_error       (also ImportError)
    ├── ModelLoadTimeout            load_timeout       a load ran past its time limit
    ├── ModelDiskFull               disk_full          (also OSError, errno 28) writing a file
    ├── ModelStoreError             store_error        a download could not be completed
    │   ├── ModelChecksumMismatch   checksum_mismatch
    │   └── ModelStoreUnavailable   store_unavailable  store or manifest unreachable
    └── InvalidImage                bad_image          an inference input is not PNG/JPEG

Messages start with the exception name the runbook greps for ("FileNotFoundError",
"ValueError: The model file is corrupted", "ImportError", "[Errno 28] No space left on
device"), then say what was wrong, where, and what to do. Third-party errors (torch,
pickle, zipfile, urllib, yaml, PIL) are translated into these at the boundary.
"""

from __future__ import annotations

import errno
from typing import ClassVar

__all__ = [
    "InvalidImage",
    "ModelChecksumMismatch",
    "ModelConfigError",
    "ModelDependencyError",
    "ModelDeviceError",
    "ModelDiskFull",
    "ModelError",
    "ModelFileCorrupted",
    "ModelFileMismatch",
    "ModelFileMissing",
    "ModelFileUnreadable",
    "ModelFileUnsafe",
    "ModelFormatTooNew",
    "ModelFormatTooOld",
    "ModelLoadTimeout",
    "ModelOutOfMemory",
    "ModelPermissionDenied",
    "ModelStoreError",
    "ModelStoreUnavailable",
]

CONVERT_HINT = (
    "convert it: python scripts/convert_model.py --input {path} "
    "--output {converted} --target-version current, then set model_path to it and reload"
)
"""What to run when a checkpoint uses an older format version."""


class ModelError(Exception):
    """Base of every error this package raises on purpose.

    ``reason`` is a short, stable machine label (a Prometheus label value); ``path`` names
    the file involved, when there is one.
    """

    reason: ClassVar[str] = "model_error"

    def __init__(self, message: str, path: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.path = path

    def __str__(self) -> str:
        return self.message


class _FileError(ModelError):
    """An error about one file, said by the class's ``template`` with its ``{path}``."""

    template: ClassVar[str]

    def __init__(self, path: str) -> None:
        super().__init__(self.template.format(path=path), path)


class ModelFileMissing(_FileError, FileNotFoundError):
    """The model file does not exist: restore it from backup or download it."""

    reason = "file_missing"
    template = ("FileNotFoundError: model file not found: {path} "
                "(restore it from /backup/models or run scripts/download_models.py)")


class ModelFileCorrupted(ModelError, ValueError):
    """The file exists but is not a valid checkpoint of this model."""

    reason = "corrupted"

    def __init__(self, path: str, cause: str) -> None:
        super().__init__(
            f"ValueError: The model file is corrupted: {path}: {cause} "
            "(restore it from /backup/models or run scripts/download_models.py --force)",
            path,
        )
        self.cause = cause


class ModelFileUnsafe(ModelFileCorrupted):
    """The file carries a pickle that would run code; it was refused, not executed."""


class ModelFileMismatch(ModelFileCorrupted):
    """A readable checkpoint whose sha256 is not the one the manifest beside it records:
    not the published file (a partial copy, a swap, or bytes changed after publishing)."""

    reason = "checksum_mismatch"

    def __init__(self, path: str, expected: str, actual: str) -> None:
        super().__init__(path, f"sha256 {actual[:16]}... does not match the manifest's "
                               f"{expected[:16]}...")
        self.expected = expected
        self.actual = actual


class ModelFileUnreadable(ModelError, OSError):
    """Reading the model file failed for a reason other than permissions (an I/O error)."""

    reason = "io_error"

    def __init__(self, path: str, cause: str) -> None:
        super().__init__(f"OSError: cannot read model file {path}: {cause}", path)


def converted_name(path: str) -> str:
    """Where the runbook converts a checkpoint to: best_model.pth -> best_model_converted.pth."""
    stem, dot, suffix = path.rpartition(".")
    return f"{stem}_converted.{suffix}" if dot and "/" not in suffix else f"{path}_converted"


class ModelFormatTooOld(ModelError):
    """The checkpoint format predates what this release reads; the converter migrates it."""

    reason = "old_format"

    def __init__(self, path: str, found: int, current: int) -> None:
        super().__init__(
            f"ModelFormatTooOld: {path} uses checkpoint format version {found}, this release "
            f"reads version {current}; " + CONVERT_HINT.format(path=path,
                                                               converted=converted_name(path)),
            path,
        )
        self.found = found
        self.current = current


class ModelFormatTooNew(ModelError):
    """The checkpoint was written by a newer release than this one."""

    reason = "new_format"

    def __init__(self, path: str, found: int, current: int) -> None:
        super().__init__(
            f"ModelFormatTooNew: {path} uses checkpoint format version {found}, this release "
            f"reads up to version {current}; upgrade the server or use an older model file",
            path,
        )


class ModelPermissionDenied(_FileError, PermissionError):
    """The process may not read (or write) the model file."""

    reason = "permission_denied"
    template = ("PermissionError: permission denied on model file {path} "
                "(fix it: chmod 644 the file, chown it and its directory to the app user)")


class ModelConfigError(ModelError):
    """A model config or manifest is invalid, or a model name is unknown."""

    reason = "config_invalid"


class ModelDeviceError(ModelError):
    """A device was requested that this machine cannot provide."""

    reason = "cuda_unavailable"

    def __init__(self, device: str) -> None:
        super().__init__(
            f"RuntimeError: CUDA requested (device={device!r}) but CUDA is not available "
            "on this machine; set device: cpu in config/model.yml or CUDA_VISIBLE_DEVICES=''"
        )


OUT_OF_MEMORY_WORDS = ("out of memory", "can't allocate memory", "cannot allocate memory",
                       "not enough memory")
"""How torch words an allocation failure it raises as a RuntimeError (CPU or CUDA)."""


class ModelOutOfMemory(ModelError, MemoryError):
    """Loading the model ran out of memory; ``cause`` is torch's own first line, if any."""

    reason = "out_of_memory"

    def __init__(self, path: str, cause: str | None = None) -> None:
        said = f" ({cause})" if cause else ""
        super().__init__(
            f"MemoryError: out of memory while loading {path}{said} "
            "(raise the container memory limit or load a quantized variant)",
            path,
        )

    @staticmethod
    def matches(exc: BaseException) -> bool:
        """Whether ``exc`` is an allocation failure: MemoryError, ``torch.OutOfMemoryError``,
        or the RuntimeError torch's allocators raise ("DefaultCPUAllocator: can't allocate
        memory", "CUDA out of memory"). The torch class is matched by name: no torch here."""
        if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
            return True
        text = str(exc).lower()
        return isinstance(exc, RuntimeError) and any(w in text for w in OUT_OF_MEMORY_WORDS)


class ModelDependencyError(ModelError, ImportError):
    """A package the model needs cannot be imported."""

    reason = "import_error"

    def __init__(self, module: str, cause: str) -> None:
        super().__init__(
            f"ImportError: No module named {module!r} ({cause}); this image lacks a "
            "dependency: run the last good image, or rebuild it with its requirements "
            "(pip install -r requirements.txt; here: make images)"
        )


class ModelLoadTimeout(ModelError):
    """A model load ran past its time limit and was abandoned (the message says how long)."""

    reason = "load_timeout"


class ModelStoreError(ModelError):
    """A model could not be downloaded from the store."""

    reason = "store_error"


class ModelChecksumMismatch(ModelStoreError):
    """The downloaded bytes do not match the manifest's sha256; nothing was replaced."""

    reason = "checksum_mismatch"

    def __init__(self, source: str, expected: str, actual: str) -> None:
        super().__init__(
            f"checksum mismatch for {source}: manifest says sha256 {expected}, got {actual}; "
            "the installed file was left untouched",
            source,
        )


class ModelDiskFull(_FileError, OSError):
    """The destination disk filled up while writing a model file; the partial file was
    removed and nothing was replaced."""

    reason = "disk_full"
    template = (f"OSError: [Errno {errno.ENOSPC}] No space left on device while writing "
                "{path}; the partial file was removed (free space, then retry: df -h)")

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.errno = errno.ENOSPC


class ModelStoreUnavailable(ModelStoreError):
    """The store, its manifest or a file in it cannot be read."""

    reason = "store_unavailable"


class InvalidImage(ModelError, ValueError):
    """An inference input is not a decodable PNG or JPEG image."""

    reason = "bad_image"
