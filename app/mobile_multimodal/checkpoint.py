"""The checkpoint file format: writing it, and reading it without ever running its code.

A checkpoint is a ``torch.save`` zip holding one dict of plain values, so
``torch.load(path, map_location='cpu', weights_only=True)`` reads it (the runbook's
scenario-5 snippet prints its ``version``, ``pytorch_version`` and ``architecture``):

    version          int, the format version (``FORMAT_VERSION``)
    pytorch_version  str, torch.__version__ of the writer
    architecture     str, ``network.ARCHITECTURE``
    variant          "fp32" | "int8" | "int2"
    config           dict of ints: the network's hyper-parameters (``NetConfig``)
    vocabulary       list of str, token ids in order
    state_dict       dict of tensors; quantized variants keep their large weights in two
                     flat tensors, ``quantized.qweight`` and ``quantized.qscale``
    quantization     {"bits": 32|8|2, "shapes": {weight name: shape}}
    checksum         sha256 of the state_dict tensors, to catch bit rot the zip misses
    metadata         dict of str/int/float: seed, steps, training time

Older formats (0: a bare state dict; 1: the first release's layout) are refused with a
message naming scripts/convert_model.py; ``convert`` migrates them.

Reading never unpickles anything but plain data: files that are not zip archives are
refused before torch sees them, and zips go through torch's weights-only unpickler, which
refuses any global it does not know (a payload is reported, not executed).
"""

from __future__ import annotations

import hashlib
import os
import pickle
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from mobile_multimodal.data import Vocabulary
from mobile_multimodal.errors import (
    ModelFileCorrupted,
    ModelFileMissing,
    ModelFileUnreadable,
    ModelFileUnsafe,
    ModelFormatTooNew,
    ModelFormatTooOld,
    ModelOutOfMemory,
    ModelPermissionDenied,
)
from mobile_multimodal.files import atomic_file
from mobile_multimodal.network import ARCHITECTURE, CaptionNet, NetConfig
from mobile_multimodal.quantize import dequantize_state, quantize_state

__all__ = [
    "FORMAT_VERSION",
    "VARIANT_BITS",
    "LoadedModel",
    "build_checkpoint",
    "build_model",
    "load_model",
    "read_checkpoint",
    "save_checkpoint",
    "state_checksum",
    "validate_checkpoint",
]

FORMAT_VERSION = 2
"""The checkpoint format this release writes and reads."""

VARIANT_BITS = {"fp32": 32, "int8": 8, "int2": 2}
"""Weight bit width of each variant."""

ZIP_MAGIC = b"PK\x03\x04"
PICKLE_PROTO = b"\x80"


@dataclass
class LoadedModel:
    """A network ready for inference, with what its checkpoint said about itself."""

    path: str
    network: CaptionNet
    vocabulary: Vocabulary
    version: int
    variant: str
    architecture: str
    pytorch_version: str
    metadata: dict[str, Any] = field(default_factory=dict)
    sha256: str | None = None
    checksum_ok: bool | None = None
    """Whether the file's sha256 matched its manifest entry (None: not checked/not listed)."""


def state_checksum(state: Mapping[str, Tensor]) -> str:
    """sha256 over names, dtypes, shapes and bytes of every tensor, in name order."""
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous().reshape(-1)
        digest.update(f"{name}|{tensor.dtype}|{list(state[name].shape)}|".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def build_checkpoint(network: CaptionNet, vocabulary: Vocabulary, variant: str,
                     metadata: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The checkpoint dict of ``network`` as ``variant`` (quantizing its weights if asked)."""
    bits = VARIANT_BITS[variant]
    state = {k: v.detach().clone() for k, v in network.state_dict().items()}
    shapes: dict[str, list[int]] = {}
    if bits < 32:
        state, shapes = quantize_state(state, bits)
    return {
        "version": FORMAT_VERSION,
        "pytorch_version": str(torch.__version__),
        "architecture": ARCHITECTURE,
        "variant": variant,
        "config": network.config.to_dict(),
        "vocabulary": list(vocabulary.tokens),
        "state_dict": state,
        "quantization": {"bits": bits, "shapes": shapes},
        "checksum": state_checksum(state),
        "metadata": dict(metadata or {}),
    }


def save_checkpoint(checkpoint: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write atomically (temp file, fsync, ``os.replace``); OS errors become ModelErrors."""
    target = Path(path)
    with atomic_file(target) as handle:
        torch.save(dict(checkpoint), handle)
    return target


def check_file(path: Path) -> None:
    """Refuse what is not even worth handing to torch: missing, unreadable, empty, not a zip."""
    name = str(path)
    try:
        size = path.stat().st_size
        if path.is_dir():
            raise ModelFileCorrupted(name, "it is a directory, not a checkpoint file")
        with path.open("rb") as handle:
            head = handle.read(4)
    except FileNotFoundError:
        raise ModelFileMissing(name) from None
    except PermissionError:
        raise ModelPermissionDenied(name) from None
    except OSError as exc:  # EIO, ELOOP, a stale mount...
        raise ModelFileUnreadable(name, exc.strerror or str(exc)) from None
    if size == 0:
        raise ModelFileCorrupted(name, "the file is empty (0 bytes)")
    if head.startswith(PICKLE_PROTO):
        raise ModelFileUnsafe(name, "it is a bare pickle stream, not a PyTorch zip "
                                    "checkpoint; refused without unpickling it")
    if head != ZIP_MAGIC:
        raise ModelFileCorrupted(name, f"not a PyTorch zip checkpoint (starts with {head!r})")


UNSAFE_MARKS = ("unsupported global", "is blocked", "unsupported operand")
"""How torch's weights-only unpickler words a refused global or opcode (any version)."""

TORCH_HINTS = ("weights_only", "weights only load failed", "check the documentation",
               "safe_globals", "trusted source")
"""Lines of torch's message that are its advice, never ours (re-running with
weights_only=False would run the file's code)."""


def _first_line(exc: BaseException) -> str:
    """torch's first line that states the problem, without its own advice."""
    lines = (ln.strip() for ln in str(exc).splitlines())
    return next((ln for ln in lines if ln and not any(h in ln.lower() for h in TORCH_HINTS)),
                "")


def _unpickling_cause(exc: pickle.UnpicklingError) -> tuple[bool, str]:
    """(is it a code payload?, the useful line of torch's long weights-only message)."""
    text = str(exc)
    marked = next((ln for ln in text.splitlines() if "WeightsUnpickler error:" in ln), None)
    detail = marked.split("WeightsUnpickler error:", 1)[1] if marked else _first_line(exc)
    detail = detail.split(". Please")[0].strip()
    if any(h in detail.lower() for h in TORCH_HINTS):
        detail = ""
    unsafe = any(mark in text.lower() for mark in UNSAFE_MARKS)
    return unsafe, detail[:200] or "the weights-only unpickler refused it"


def read_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The raw checkpoint dict, loaded weights-only; every failure is a typed ModelError."""
    file = Path(path)
    check_file(file)
    try:
        raw = torch.load(file, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        unsafe, detail = _unpickling_cause(exc)
        if unsafe:
            raise ModelFileUnsafe(str(file), "it carries pickled code, refused without "
                                             f"running it ({detail})") from None
        raise ModelFileCorrupted(str(file), f"unreadable pickle data ({detail})") from None
    except MemoryError:
        raise ModelOutOfMemory(str(file)) from None
    except PermissionError:
        raise ModelPermissionDenied(str(file)) from None
    except Exception as exc:  # torch reports zip damage as RuntimeError, EOFError, ...
        cause = f"{type(exc).__name__}: {_first_line(exc).split('. This is an internal')[0]}"
        if ModelOutOfMemory.matches(exc):  # torch raises RuntimeError, not MemoryError
            raise ModelOutOfMemory(str(file), cause[:200]) from None
        raise ModelFileCorrupted(str(file), cause[:200]) from None
    if not isinstance(raw, dict):
        raise ModelFileCorrupted(str(file), f"holds a {type(raw).__name__}, not a checkpoint")
    return raw


def format_version(raw: Mapping[str, Any], path: str) -> int:
    """The format version of a raw checkpoint; 0 for a bare state dict (the oldest form)."""
    if "version" not in raw:
        if raw and all(isinstance(v, Tensor) for v in raw.values()):
            return 0
        raise ModelFileCorrupted(path, "no 'version' key: not a checkpoint of this model")
    version = raw["version"]
    if not isinstance(version, int) or isinstance(version, bool):
        raise ModelFileCorrupted(path, f"'version' must be an int, got {version!r}")
    return version


def _require(raw: Mapping[str, Any], key: str, kind: type, path: str) -> Any:
    value = raw.get(key)
    if not isinstance(value, kind):
        raise ModelFileCorrupted(path, f"key {key!r} must be a {kind.__name__}, "
                                       f"got {type(value).__name__}")
    return value


def validate_checkpoint(raw: Mapping[str, Any], path: str) -> None:
    """Refuse a checkpoint of another format version, architecture or with damaged data."""
    version = format_version(raw, path)
    if version < FORMAT_VERSION:
        raise ModelFormatTooOld(path, version, FORMAT_VERSION)
    if version > FORMAT_VERSION:
        raise ModelFormatTooNew(path, version, FORMAT_VERSION)
    architecture = _require(raw, "architecture", str, path)
    if architecture != ARCHITECTURE:
        raise ModelFileCorrupted(path, f"architecture {architecture!r} is not {ARCHITECTURE}")
    if _require(raw, "variant", str, path) not in VARIANT_BITS:
        raise ModelFileCorrupted(path, f"unknown variant {raw['variant']!r}")
    vocabulary = _require(raw, "vocabulary", list, path)
    if not vocabulary or not all(isinstance(t, str) for t in vocabulary):
        raise ModelFileCorrupted(path, "'vocabulary' must be a non-empty list of str")
    state = _require(raw, "state_dict", dict, path)
    if not all(isinstance(k, str) and isinstance(v, Tensor) for k, v in state.items()):
        raise ModelFileCorrupted(path, "'state_dict' must map names to tensors")
    if _require(raw, "checksum", str, path) != state_checksum(state):
        raise ModelFileCorrupted(path, "the weights do not match their checksum "
                                       "(bit rot or a partial copy)")
    _require(raw, "quantization", dict, path)
    _require(raw, "config", dict, path)


def _network(raw: Mapping[str, Any], path: str) -> tuple[CaptionNet, Vocabulary]:
    """Build the network and load (unpacking if quantized) the weights into it."""
    try:
        vocabulary = Vocabulary(raw["vocabulary"])
        config = NetConfig.from_dict(raw["config"])
        if config.vocab_size != len(raw["vocabulary"]):
            raise ValueError("config vocab_size does not match the vocabulary")
        quant = raw["quantization"]
        state = raw["state_dict"]
        if raw["variant"] != "fp32":
            state = dequantize_state(state, int(quant["bits"]), quant["shapes"])
        network = CaptionNet(config, device="meta")  # no random init: the file has it all
        network.load_state_dict(state, strict=True, assign=True)
    except MemoryError:
        raise ModelOutOfMemory(path) from None
    except (ValueError, KeyError, TypeError, IndexError, RuntimeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if ModelOutOfMemory.matches(exc):  # torch.OutOfMemoryError, "can't allocate memory"
            raise ModelOutOfMemory(path, f"{type(exc).__name__}: {first}"[:200]) from None
        raise ModelFileCorrupted(path, f"weights do not fit the architecture: {first}"
                                 [:240]) from None
    return network.eval(), vocabulary


def load_model(path: str | os.PathLike[str]) -> LoadedModel:
    """Read, validate and build a checkpoint; raises only ModelError subclasses."""
    raw = read_checkpoint(path)
    validate_checkpoint(raw, str(path))
    return build_model(raw, str(path))


def build_model(raw: Mapping[str, Any], name: str) -> LoadedModel:
    """The network of a raw checkpoint that ``validate_checkpoint`` accepted."""
    metadata = raw.get("metadata")
    network, vocabulary = _network(raw, name)
    return LoadedModel(
        path=name,
        network=network,
        vocabulary=vocabulary,
        version=raw["version"],
        variant=raw["variant"],
        architecture=raw["architecture"],
        pytorch_version=str(raw.get("pytorch_version", "unknown")),
        metadata=dict(metadata) if isinstance(metadata, dict) else {},
    )
