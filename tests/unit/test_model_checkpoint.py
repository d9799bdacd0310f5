"""Checkpoint files: round trip per variant, and refusal of every kind of bad file."""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import pytest
import torch

from mobile_multimodal.checkpoint import (
    FORMAT_VERSION,
    VARIANT_BITS,
    build_checkpoint,
    load_model,
    save_checkpoint,
)
from mobile_multimodal.data import Vocabulary
from mobile_multimodal.errors import (
    ModelError,
    ModelFileCorrupted,
    ModelFileMissing,
    ModelFileUnsafe,
    ModelFormatTooNew,
    ModelFormatTooOld,
    ModelPermissionDenied,
)
from mobile_multimodal.network import ARCHITECTURE, CaptionNet, NetConfig
from mobile_multimodal.quantize import dequantize_state, quantize_state


@pytest.fixture(scope="module")
def network() -> CaptionNet:
    torch.manual_seed(0)
    return CaptionNet(NetConfig()).eval()


@pytest.fixture
def good_file(tmp_path: Path, network: CaptionNet) -> Path:
    return save_checkpoint(build_checkpoint(network, Vocabulary(), "fp32"), tmp_path / "m.pth")


def _expected_state(network: CaptionNet, variant: str) -> dict[str, torch.Tensor]:
    state = network.state_dict()
    if variant == "fp32":
        return state
    bits = VARIANT_BITS[variant]
    stored, shapes = quantize_state(state, bits)
    return dequantize_state(stored, bits, shapes)


@pytest.mark.parametrize("variant", ["fp32", "int8", "int2"])
def test_round_trip_restores_the_weights_of_each_variant(tmp_path: Path, network: CaptionNet,
                                                         variant: str) -> None:
    path = save_checkpoint(build_checkpoint(network, Vocabulary(), variant, {"seed": 0}),
                           tmp_path / f"{variant}.pth")
    loaded = load_model(path)
    assert (loaded.variant, loaded.version, loaded.architecture) == (variant, FORMAT_VERSION,
                                                                      ARCHITECTURE)
    assert loaded.vocabulary.tokens == Vocabulary().tokens
    assert loaded.metadata == {"seed": 0}
    expected = _expected_state(network, variant)
    for name, tensor in loaded.network.state_dict().items():
        assert torch.equal(tensor, expected[name]), name


def test_checkpoint_is_plain_data_for_a_weights_only_load(good_file: Path) -> None:
    raw = torch.load(good_file, map_location="cpu", weights_only=True)
    assert raw["version"] == FORMAT_VERSION and isinstance(raw["version"], int)
    assert raw["pytorch_version"] == str(torch.__version__)
    assert raw["architecture"] == ARCHITECTURE
    assert raw["variant"] == "fp32"
    assert raw["vocabulary"] == Vocabulary().tokens


def test_int2_file_is_at_most_an_eighth_of_fp32(tmp_path: Path, network: CaptionNet) -> None:
    sizes = {
        v: save_checkpoint(build_checkpoint(network, Vocabulary(), v), tmp_path / v)
        .stat().st_size for v in ("fp32", "int2")
    }
    assert sizes["int2"] * 8 <= sizes["fp32"]


class _WritesAFile:
    """A pickle payload: unpickling it would call open(marker, "w") and create the file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.marker), "w"))


def _bad(kind: str, good: Path, tmp: Path) -> Path:
    """Write a bad file of the given kind and return its path."""
    path, data = tmp / f"{kind}.pth", good.read_bytes()
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif kind == "bit_flipped":
        middle = len(data) // 2
        path.write_bytes(data[:middle] + bytes(b ^ 0xFF for b in data[middle:middle + 64])
                         + data[middle + 64:])
    elif kind == "random_bytes":
        path.write_bytes(os.urandom(4096))
    elif kind == "text":
        path.write_text("version: 2\n")
    elif kind == "a_list":
        torch.save([1, 2, 3], path)
    elif kind == "no_version":
        torch.save({"weights": "none", "epoch": 3}, path)
    return path


@pytest.mark.parametrize("kind", ["empty", "truncated", "bit_flipped", "random_bytes", "text",
                                  "a_list", "no_version"])
def test_bad_files_are_refused_as_corrupted_naming_file_and_cause(
        kind: str, good_file: Path, tmp_path: Path) -> None:
    path = _bad(kind, good_file, tmp_path)
    with pytest.raises(ModelFileCorrupted) as caught:
        load_model(path)
    message = str(caught.value)
    assert message.startswith("ValueError: The model file is corrupted")
    assert str(path) in message and caught.value.reason == "corrupted"
    assert caught.value.__cause__ is None  # no chained third-party traceback


@pytest.mark.parametrize("wrapping", ["bare_pickle", "torch_zip"])
def test_pickle_payload_is_refused_and_never_executed(wrapping: str, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    payload = {"version": FORMAT_VERSION, "state_dict": _WritesAFile(marker)}
    if wrapping == "bare_pickle":
        path.write_bytes(pickle.dumps(payload))
    else:
        torch.save(payload, path)
    with pytest.raises(ModelFileUnsafe) as caught:
        load_model(path)
    assert not marker.exists()
    assert str(path) in str(caught.value) and caught.value.reason == "corrupted"
    assert "The model file is corrupted" in str(caught.value)


def test_missing_file_is_a_file_not_found_error(tmp_path: Path) -> None:
    path = tmp_path / "best_model.pth"
    with pytest.raises(ModelFileMissing) as caught:
        load_model(path)
    assert isinstance(caught.value, FileNotFoundError)
    assert str(caught.value).startswith("FileNotFoundError")
    assert str(path) in str(caught.value) and caught.value.reason == "file_missing"


def test_directory_in_place_of_the_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelFileCorrupted, match="directory"):
        load_model(tmp_path)


def test_unreadable_file_is_permission_denied(good_file: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    if os.geteuid() != 0:
        good_file.chmod(0)
    else:  # root reads anything: make open() answer as it would for another user
        def denied(*_: object, **__: object) -> None:
            raise PermissionError(13, "Permission denied")
        monkeypatch.setattr(Path, "open", denied)
    with pytest.raises(ModelPermissionDenied) as caught:
        load_model(good_file)
    assert caught.value.reason == "permission_denied" and str(good_file) in str(caught.value)


def _rewrite(path: Path, **changes: Any) -> Path:
    raw = torch.load(path, map_location="cpu", weights_only=True)
    raw.update(changes)
    torch.save(raw, path)
    return path


def test_newer_format_is_refused(good_file: Path) -> None:
    with pytest.raises(ModelFormatTooNew) as caught:
        load_model(_rewrite(good_file, version=FORMAT_VERSION + 1))
    assert caught.value.reason == "new_format"


def test_older_format_is_refused_naming_the_converter(good_file: Path) -> None:
    with pytest.raises(ModelFormatTooOld) as caught:
        load_model(_rewrite(good_file, version=1))
    assert "scripts/convert_model.py" in str(caught.value)
    assert caught.value.reason == "old_format"


@pytest.mark.parametrize("changes", [
    {"architecture": "ResNet50"},
    {"variant": "int4"},
    {"vocabulary": []},
    {"vocabulary": ["a", "b"]},
    {"checksum": "0" * 64},
    {"config": {"hidden": 64}},
    {"state_dict": {"w": "not a tensor"}},
])
def test_inconsistent_checkpoints_are_refused(good_file: Path, changes: dict[str, Any]) -> None:
    with pytest.raises(ModelFileCorrupted) as caught:
        load_model(_rewrite(good_file, **changes))
    assert str(good_file) in str(caught.value)


def test_every_model_error_has_a_reason() -> None:
    import mobile_multimodal.errors as errors

    classes = [getattr(errors, n) for n in errors.__all__]
    assert all(issubclass(c, ModelError) for c in classes)
    reasons = {c.reason for c in classes}
    assert {"file_missing", "corrupted", "old_format", "permission_denied", "config_invalid",
            "cuda_unavailable", "import_error"} <= reasons
