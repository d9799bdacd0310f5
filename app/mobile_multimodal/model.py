"""``MobileMultiModalLLM``: the public face of the model (load by name or path, caption).

The name is the runbook's; the model is a small image captioner (see ``network``). It loads
any of the published variants -- ``best_model`` (fp32), ``int8_quantized``,
``int2_quantized`` (alias ``mobile-mm-llm-int2``) -- or a checkpoint path, and refuses bad
files with a typed ``ModelError`` (see ``errors``) rather than a stack trace.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from mobile_multimodal.errors import (
    InvalidImage,
    ModelConfigError,
    ModelDependencyError,
    ModelDeviceError,
)
from mobile_multimodal.health import health_check
from mobile_multimodal.manifest import MANIFEST, find_entry, read_manifest, resolve_name

if TYPE_CHECKING:
    import torch
    from PIL import Image

    from mobile_multimodal.checkpoint import LoadedModel

__all__ = [
    "DEFAULT_MODEL",
    "DEFAULT_MODEL_DIR",
    "MAX_IMAGE_PIXELS",
    "MobileMultiModalLLM",
    "decode_image",
    "require_runtime",
    "resolve_model_dir",
    "resolve_model_path",
]

DEFAULT_MODEL_DIR = "/app/models"
"""Model directory when neither an argument nor env MODEL_DIR names one (the container's)."""

DEFAULT_MODEL = "best_model"
"""Variant loaded when no name is given."""

MAX_IMAGE_PIXELS = 4096 * 4096
"""Largest image (width x height) decoded; bigger ones are refused before decoding."""

ImageInput: TypeAlias = "Image.Image | bytes | bytearray | memoryview"
"""What ``caption`` accepts (PIL is imported only when a model is loaded)."""

RUNTIME_MODULES = ("numpy", "PIL.Image", "torch")
"""Imported by every load, so a missing dependency fails the load, not the first request."""


def require_runtime() -> None:
    """Import what inference needs; a missing module is a ModelDependencyError (import_error).

    Kept out of module import so that ``from mobile_multimodal import MobileMultiModalLLM``
    stays light: the HEALTHCHECK probe and the runbook's snippets work in a broken image.
    """
    import importlib

    for module in RUNTIME_MODULES:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise ModelDependencyError(exc.name or module, str(exc)) from None


def resolve_model_dir(model_dir: str | os.PathLike[str] | None = None) -> Path:
    """The argument, else env MODEL_DIR, else ``DEFAULT_MODEL_DIR``."""
    return Path(model_dir or os.environ.get("MODEL_DIR") or DEFAULT_MODEL_DIR)


def resolve_model_path(name_or_path: str | os.PathLike[str],
                       model_dir: str | os.PathLike[str] | None = None) -> Path:
    """A path stays a path; a name (or file name) is looked up in the model directory.

    Lookup: the directory's manifest.json when it lists the name, else the built-in variant
    table (so the published names work even without a manifest).
    """
    text = os.fspath(name_or_path)
    if os.sep in text or Path(text).is_file():
        return Path(text)
    directory = resolve_model_dir(model_dir)
    try:
        manifest = read_manifest(directory)
        if manifest is not None:
            return directory / find_entry(manifest, text, str(directory / MANIFEST))["file"]
    except ModelConfigError:
        pass  # a broken or silent manifest must not hide a published variant's file
    return directory / resolve_name(text).file


def _device(wanted: str) -> torch.device:
    """cpu, cuda or auto; asking for CUDA on a machine without it is a ModelDeviceError."""
    import torch

    if wanted == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if wanted.startswith("cuda") and not torch.cuda.is_available():
        raise ModelDeviceError(wanted)
    return torch.device(wanted)


def decode_image(data: ImageInput) -> Image.Image:
    """A PIL image from a PIL image or PNG/JPEG bytes; anything else is InvalidImage."""
    from PIL import Image

    if isinstance(data, Image.Image):
        return data
    if not isinstance(data, bytes | bytearray | memoryview):
        raise InvalidImage(f"expected a PIL image or PNG/JPEG bytes, got {type(data).__name__}")
    try:
        image = Image.open(io.BytesIO(bytes(data)))
        if image.format not in ("PNG", "JPEG"):
            raise InvalidImage(f"image format {image.format} is not supported; send PNG or JPEG")
        if image.width * image.height > MAX_IMAGE_PIXELS:
            raise InvalidImage(f"image is {image.width}x{image.height} pixels; the limit is "
                               f"{MAX_IMAGE_PIXELS} pixels")
        image.draft("RGB", (64, 64))  # JPEG: decode at reduced scale, we only need 32x32
        image.load()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        if isinstance(exc, InvalidImage):
            raise
        raise InvalidImage(f"cannot decode image: {exc}") from None
    return image


class MobileMultiModalLLM:
    """A loaded captioning model. Build it with ``from_pretrained``."""

    def __init__(self, loaded: LoadedModel, name: str, device: torch.device) -> None:
        self.name = name
        self.path = loaded.path
        self.variant = loaded.variant
        self.version = loaded.version
        self.architecture = loaded.architecture
        self.pytorch_version = loaded.pytorch_version
        self.vocabulary = loaded.vocabulary
        self.metadata = loaded.metadata
        self.device = device
        self.sha256 = loaded.sha256
        self.checksum_ok = loaded.checksum_ok
        self.network = loaded.network.to(device)
        self.image_size = loaded.network.config.image_size

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike[str] = DEFAULT_MODEL, *,
                        model_dir: str | os.PathLike[str] | None = None,
                        device: str = "cpu") -> MobileMultiModalLLM:
        """Load a variant by name (``mobile-mm-llm-int2``, ``best_model``...) or a path.

        Raises a ``ModelError`` subclass (its ``reason`` says why) for every failure. The
        file is validated first (``validate_model_file``: exists, readable, non-empty,
        weights-only load, sha256 against the manifest beside it).
        """
        require_runtime()
        from mobile_multimodal.checkpoint import build_model
        from mobile_multimodal.validate import validate_model_file

        target = _device(device)
        path = resolve_model_path(name_or_path, model_dir)
        checked = validate_model_file(path)
        loaded = build_model(checked.raw, str(path))
        loaded.sha256, loaded.checksum_ok = checked.sha256, checked.checksum_ok
        return cls(loaded, os.fspath(name_or_path), target)

    def _tensor(self, images: Sequence[ImageInput]) -> torch.Tensor:
        import numpy as np
        import torch
        from PIL import Image

        size = (self.image_size, self.image_size)
        arrays = [
            np.asarray(decode_image(img).convert("RGB").resize(size, Image.Resampling.BILINEAR))
            for img in images
        ]
        batch = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float().div_(255)
        return batch.to(self.device)

    def caption_batch(self, images: Sequence[ImageInput]) -> list[str]:
        """Captions for several images at once (any sizes; each is resized)."""
        if not images:
            return []
        ids = self.network.generate(self._tensor(images), self.vocabulary.bos,
                                    self.vocabulary.eos)
        return [self.vocabulary.decode(row.tolist()) for row in ids]

    def caption(self, image: ImageInput) -> str:
        """The caption of one PIL image or PNG/JPEG bytes, e.g. "two green triangles"."""
        return self.caption_batch([image])[0]

    def parameter_bytes(self) -> int:
        """Bytes held by the weights in memory (fp32 after unpacking, whatever the file)."""
        return sum(t.numel() * t.element_size() for t in self.network.state_dict().values())

    def info(self) -> dict[str, Any]:
        """What the model says about itself, for /model/health and logs."""
        return {
            "name": self.name, "path": self.path, "variant": self.variant,
            "format_version": self.version, "architecture": self.architecture,
            "pytorch_version": self.pytorch_version, "device": str(self.device),
            "parameter_bytes": self.parameter_bytes(), "sha256": self.sha256,
            "checksum_ok": self.checksum_ok,
        }

    @classmethod
    def health_check(cls, url: str | None = None, timeout: float = 10.0) -> None:
        """Docker HEALTHCHECK: GET http://127.0.0.1:${PORT:-8080}/health; SystemExit if not
        200 and healthy."""
        health_check(url, timeout)
