"""Checkpoint format migrations (``scripts/convert_model.py``, runbook scenario 5).

Format history:
    0  a bare fp32 ``state_dict`` (what ``torch.save(model.state_dict())`` writes); the
       vocabulary and hyper-parameters were the built-in defaults.
    1  ``{"version": 1, "pytorch_version", "arch", "vocab": "<space-joined tokens>",
       "model_state": {...}}`` with the encoder under ``cnn.`` and the image projection
       under ``fc.``; fp32 only.
    2  the current layout, described in ``checkpoint``.

Each migration turns version n into n + 1; ``convert_file`` chains them. Input is read
weights-only (a payload is refused, never run) and the result is checked by building the
network from it before it is written, atomically.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from mobile_multimodal.checkpoint import (
    FORMAT_VERSION,
    format_version,
    load_model,
    read_checkpoint,
    save_checkpoint,
    state_checksum,
)
from mobile_multimodal.data import VOCABULARY
from mobile_multimodal.errors import ModelConfigError, ModelError, ModelFileCorrupted
from mobile_multimodal.files import write_errors
from mobile_multimodal.manifest import MANIFEST, record_file
from mobile_multimodal.network import ARCHITECTURE, NetConfig

__all__ = ["MIGRATIONS", "ConvertResult", "convert_checkpoint", "convert_file", "main"]

Raw = dict[str, Any]

V1_RENAMES = {"cnn.": "encoder.", "fc.": "project."}
"""Key prefixes that format 1 spelled differently (old prefix -> current prefix)."""


def _v0_to_v1(raw: Mapping[str, Any], path: str) -> Raw:
    """Wrap a bare state dict in the format-1 envelope, with format-1 key names."""
    state = {}
    for key, tensor in raw.items():
        for old, new in V1_RENAMES.items():
            if key.startswith(new):
                key = old + key[len(new):]
        state[key] = tensor
    return {"version": 1, "pytorch_version": "unknown", "arch": ARCHITECTURE,
            "vocab": " ".join(VOCABULARY), "model_state": state}


def _v1_to_v2(raw: Mapping[str, Any], path: str) -> Raw:
    """Rename keys, split the vocabulary, add config, variant and checksum."""
    state = raw.get("model_state")
    vocab = raw.get("vocab")
    if not isinstance(state, dict) or not isinstance(vocab, str):
        raise ModelFileCorrupted(path, "format 1 needs 'model_state' (dict) and 'vocab' (str)")
    renamed: dict[str, Tensor] = {}
    for key, tensor in state.items():
        for old, new in V1_RENAMES.items():
            if key.startswith(old):
                key = new + key[len(old):]
        renamed[key] = tensor
    tokens = vocab.split()
    config = NetConfig(vocab_size=len(tokens))
    return {
        "version": 2, "pytorch_version": str(raw.get("pytorch_version", "unknown")),
        "architecture": str(raw.get("arch", ARCHITECTURE)), "variant": "fp32",
        "config": config.to_dict(), "vocabulary": tokens, "state_dict": renamed,
        "quantization": {"bits": 32, "shapes": {}}, "checksum": state_checksum(renamed),
        "metadata": {"converted_from": 1},
    }


MIGRATIONS: dict[int, Callable[[Mapping[str, Any], str], Raw]] = {0: _v0_to_v1, 1: _v1_to_v2}
"""version n -> the function that turns a format-n checkpoint into format n + 1."""


@dataclass(frozen=True)
class ConvertResult:
    """What a conversion did."""

    input: Path
    output: Path
    from_version: int
    to_version: int


def _target(target_version: str | int) -> int:
    if target_version == "current":
        return FORMAT_VERSION
    try:
        target = int(target_version)
    except ValueError:
        raise ModelConfigError(f"--target-version must be 'current' or an int, "
                               f"got {target_version!r}") from None
    if not 1 <= target <= FORMAT_VERSION:
        raise ModelConfigError(f"--target-version {target} is not a known format "
                               f"(1..{FORMAT_VERSION})")
    return target


def convert_checkpoint(raw: Mapping[str, Any], path: str, target: int) -> tuple[Raw, int]:
    """Migrate a raw checkpoint to ``target``; returns (checkpoint, version it started at)."""
    found = format_version(raw, path)
    if found > target:
        raise ModelConfigError(f"{path} is format {found}; cannot convert down to {target}")
    converted = dict(raw)
    for version in range(found, target):
        converted = MIGRATIONS[version](converted, path)
    if target == FORMAT_VERSION:
        converted["pytorch_version"] = str(torch.__version__)
    return converted, found


def convert_file(input_path: str | os.PathLike[str], output_path: str | os.PathLike[str],
                 target_version: str | int = "current") -> ConvertResult:
    """Read ``input_path`` safely, migrate it, check it loads, write ``output_path``."""
    source, output = Path(input_path), Path(output_path)
    target = _target(target_version)
    converted, found = convert_checkpoint(read_checkpoint(source), str(source), target)
    save_checkpoint(converted, output)
    if target == FORMAT_VERSION:
        try:
            load_model(output)  # the result must be servable, not merely well-formed
        except ModelError:
            output.unlink(missing_ok=True)
            raise
        # Converted in place (or over another listed file): the manifest must say what the
        # directory now holds, or the server refuses the file as a checksum mismatch.
        with write_errors(output.parent / MANIFEST):
            record_file(output, target)
    return ConvertResult(source, output, found, target)


def main(argv: Sequence[str] | None = None) -> int:
    """``convert_model.py --input IN --output OUT [--target-version current|N]``."""
    parser = argparse.ArgumentParser(
        prog="convert_model.py", description="Migrate a model checkpoint to a newer format.")
    parser.add_argument("--input", required=True, help="checkpoint to read")
    parser.add_argument("--output", required=True, help="where to write the converted file")
    parser.add_argument("--target-version", default="current",
                        help=f"'current' (= {FORMAT_VERSION}) or a format number")
    args = parser.parse_args(argv)
    try:
        result = convert_file(args.input, args.output, args.target_version)
    except ModelError as exc:
        print(f"convert_model: error: {exc}", file=sys.stderr)
        return 1
    verb = "copied" if result.from_version == result.to_version else "converted"
    print(f"{verb} {result.input} (format {result.from_version}) -> {result.output} "
          f"(format {result.to_version})")
    return 0
