"""Published model variants, their names, and ``manifest.json`` (what a directory holds).

Every variant has a canonical name (also its file stem) and aliases; the runbook's
``mobile-mm-llm-int2`` is an alias of ``int2_quantized``. Any name works wherever a model is
named: ``from_pretrained``, ``download_models.py --model``, ``config/model.yml``.

A manifest only ever describes files it has read: ``write_manifest`` hashes and opens each
file it lists, and entries whose file is absent are left out.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mobile_multimodal.errors import ModelConfigError
from mobile_multimodal.files import atomic_file, file_sha256

__all__ = [
    "MANIFEST",
    "MANIFEST_VERSION",
    "MODELS",
    "ModelEntry",
    "describe_file",
    "file_checksum_ok",
    "find_entry",
    "manifest_sha256",
    "parse_manifest",
    "read_manifest",
    "record_file",
    "resolve_name",
    "write_json_atomic",
    "write_manifest",
]

MANIFEST = "manifest.json"
"""File name of the manifest in a model directory or store."""

MANIFEST_VERSION = 1
"""Layout version of manifest.json itself."""


@dataclass(frozen=True)
class ModelEntry:
    """A published variant: canonical name, file name, variant and the other names it has."""

    name: str
    file: str
    variant: str
    aliases: tuple[str, ...]

    def names(self) -> tuple[str, ...]:
        """Every name this variant answers to, the file name included."""
        return (self.name, self.file, *self.aliases)


MODELS = (
    ModelEntry("best_model", "best_model.pth", "fp32", ("mobile-mm-llm", "fp32")),
    ModelEntry("int8_quantized", "int8_quantized.pth", "int8", ("mobile-mm-llm-int8", "int8")),
    ModelEntry("int2_quantized", "int2_quantized.pth", "int2", ("mobile-mm-llm-int2", "int2")),
)
"""The variants ``modelserver train`` writes, in order."""


def resolve_name(name: str) -> ModelEntry:
    """The variant a name or alias stands for; ModelConfigError lists the known names."""
    for entry in MODELS:
        if name in entry.names():
            return entry
    known = ", ".join(n for e in MODELS for n in (e.name, *e.aliases))
    raise ModelConfigError(f"unknown model name {name!r}; known names: {known}")


def describe_file(path: Path, entry: ModelEntry, accuracy: float | None) -> dict[str, Any]:
    """The manifest entry of a file, from the file itself (format version read from it)."""
    # Imported here, not at the top: downloads use this module and must work without torch.
    from mobile_multimodal.checkpoint import format_version, read_checkpoint

    version = format_version(read_checkpoint(path), str(path))
    return {
        "name": entry.name,
        "aliases": list(entry.aliases),
        "file": path.name,
        "variant": entry.variant,
        "sha256": file_sha256(path),
        "size": path.stat().st_size,
        "format_version": version,
        "accuracy": None if accuracy is None else round(accuracy, 4),
    }


def write_json_atomic(data: Mapping[str, Any], path: Path) -> None:
    """Write JSON via a temp file and ``os.replace`` so readers never see half a file."""
    with atomic_file(path) as handle:
        handle.write((json.dumps(data, indent=2, sort_keys=True) + "\n").encode())


def write_manifest(directory: Path, accuracy: Mapping[str, float | None]) -> Path:
    """(Re)write ``directory/manifest.json`` from the variant files present in it."""
    models = [
        describe_file(directory / entry.file, entry, accuracy.get(entry.name))
        for entry in MODELS
        if (directory / entry.file).is_file()
    ]
    import torch  # see describe_file: only writing a manifest from files needs torch

    manifest = {"manifest_version": MANIFEST_VERSION, "pytorch_version": str(torch.__version__),
                "models": models}
    path = directory / MANIFEST
    write_json_atomic(manifest, path)
    return path


def parse_manifest(text: str, source: str) -> dict[str, Any]:
    """Parse and check a manifest's shape; ModelConfigError names the source and the key."""
    try:
        manifest = json.loads(text)
    except ValueError as exc:
        raise ModelConfigError(f"manifest {source} is not valid JSON: {exc}") from None
    models = manifest.get("models") if isinstance(manifest, dict) else None
    if not isinstance(models, list):
        raise ModelConfigError(f"manifest {source}: key 'models' must be a list")
    for i, item in enumerate(models):
        for key, kind in (("name", str), ("file", str), ("sha256", str), ("size", int)):
            if not isinstance(item, dict) or not isinstance(item.get(key), kind):
                raise ModelConfigError(f"manifest {source}: models[{i}].{key} must be a "
                                       f"{kind.__name__}")
        aliases = item.get("aliases", [])
        if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
            raise ModelConfigError(f"manifest {source}: models[{i}].aliases must be a list "
                                   "of str")
        if "/" in item["file"] or item["file"].startswith("."):
            raise ModelConfigError(f"manifest {source}: models[{i}].file must be a plain "
                                   f"file name, got {item['file']!r}")
    return manifest


def read_manifest(directory: Path) -> dict[str, Any] | None:
    """The manifest of a model directory, or None when it has none."""
    path = directory / MANIFEST
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ModelConfigError(f"cannot read manifest {path}: {exc.strerror}") from None
    return parse_manifest(text, str(path))


def find_entry(manifest: Mapping[str, Any], name: str, source: str) -> dict[str, Any]:
    """The manifest entry for a name or alias; ModelConfigError when it is not listed."""
    wanted = {name}
    with suppress(ModelConfigError):  # a name only this manifest knows is still fine
        wanted.update(resolve_name(name).names())
    for item in manifest["models"]:
        if wanted & {item["name"], item["file"], *item.get("aliases", [])}:
            return dict(item)
    listed = ", ".join(
        f"{item['name']} ({', '.join(item['aliases'])})" if item.get("aliases") else item["name"]
        for item in manifest["models"]
    )
    raise ModelConfigError(f"model {name!r} is not in manifest {source} (it lists: {listed})")


def manifest_sha256(path: Path) -> str | None:
    """The sha256 that the manifest beside ``path`` records for it; None when the directory
    has no readable manifest or the manifest does not list the file."""
    try:
        manifest = read_manifest(path.parent)
    except ModelConfigError:
        return None
    if manifest is None:
        return None
    return next((str(m["sha256"]) for m in manifest["models"] if m["file"] == path.name), None)


def file_checksum_ok(path: Path) -> bool | None:
    """Whether a file matches its manifest entry: None when the manifest does not list it
    or the file cannot be read (missing, permission denied)."""
    expected = manifest_sha256(path)
    if expected is None:
        return None
    try:
        return file_sha256(path) == expected
    except OSError:
        return None


def record_file(path: Path, format_version: int) -> bool:
    """Update the entry of ``path`` in the manifest beside it (sha256, size, format) after
    the file was rewritten in place (a conversion); False when the manifest does not list
    it (or is unreadable: the server then loads the file unverified anyway). Only call this
    for a file just written and checked."""
    try:
        manifest = read_manifest(path.parent)
    except ModelConfigError:
        return False
    if manifest is None or not any(m["file"] == path.name for m in manifest["models"]):
        return False
    for entry in manifest["models"]:
        if entry["file"] == path.name:
            entry.update(sha256=file_sha256(path), size=path.stat().st_size,
                         format_version=format_version)
    write_json_atomic(manifest, path.parent / MANIFEST)
    return True
