"""convert_model.py: older checkpoint formats migrate to the current one (runbook #5).

The format-0 and format-1 fixtures are built here, from a fresh network, exactly as those
releases wrote them (see ``mobile_multimodal.convert``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from mobile_multimodal.checkpoint import (
    FORMAT_VERSION,
    build_checkpoint,
    load_model,
    save_checkpoint,
)
from mobile_multimodal.convert import convert_file
from mobile_multimodal.data import VOCABULARY, Vocabulary, generate
from mobile_multimodal.errors import ModelConfigError, ModelFileCorrupted, ModelFormatTooOld
from mobile_multimodal.network import CaptionNet, NetConfig
from mobile_multimodal.training import to_tensor

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def network() -> CaptionNet:
    torch.manual_seed(5)
    return CaptionNet(NetConfig()).eval()


def _format1_state(network: CaptionNet) -> dict[str, torch.Tensor]:
    state = {}
    for key, tensor in network.state_dict().items():
        for current, old in (("encoder.", "cnn."), ("project.", "fc.")):
            if key.startswith(current):
                key = old + key[len(current):]
        state[key] = tensor
    return state


def write_format1(network: CaptionNet, path: Path) -> Path:
    """A checkpoint as the first release wrote it."""
    torch.save({"version": 1, "pytorch_version": "1.13.1", "arch": "MobileCaptionNet",
                "vocab": " ".join(VOCABULARY), "model_state": _format1_state(network)}, path)
    return path


def write_format0(network: CaptionNet, path: Path) -> Path:
    """A bare state dict, as ``torch.save(model.state_dict())`` writes it."""
    torch.save(network.state_dict(), path)
    return path


def _captions(network: CaptionNet) -> list[str]:
    images, _, _ = generate(64, seed=11)
    vocabulary = Vocabulary()
    ids = network.generate(to_tensor(images), vocabulary.bos, vocabulary.eos)
    return [vocabulary.decode(row.tolist()) for row in ids]


@pytest.mark.parametrize("writer", [write_format0, write_format1])
def test_the_server_refuses_old_formats_naming_the_converter(writer: Any, tmp_path: Path,
                                                             network: CaptionNet) -> None:
    path = writer(network, tmp_path / "best_model.pth")
    with pytest.raises(ModelFormatTooOld) as caught:
        load_model(path)
    assert "scripts/convert_model.py" in str(caught.value) and str(path) in str(caught.value)


@pytest.mark.parametrize(("writer", "version"), [(write_format0, 0), (write_format1, 1)])
def test_old_formats_convert_to_current_with_identical_weights(
        writer: Any, version: int, tmp_path: Path, network: CaptionNet) -> None:
    source = writer(network, tmp_path / "old.pth")
    result = convert_file(source, tmp_path / "new.pth", "current")
    assert (result.from_version, result.to_version) == (version, FORMAT_VERSION)
    loaded = load_model(tmp_path / "new.pth")
    assert loaded.version == FORMAT_VERSION and loaded.variant == "fp32"
    for name, tensor in network.state_dict().items():
        assert torch.equal(loaded.network.state_dict()[name], tensor)
    assert _captions(loaded.network) == _captions(network)


def test_current_format_is_copied_unchanged(tmp_path: Path, network: CaptionNet) -> None:
    source = save_checkpoint(build_checkpoint(network, Vocabulary(), "int2"), tmp_path / "a")
    result = convert_file(source, tmp_path / "b.pth")
    assert result.from_version == result.to_version == FORMAT_VERSION
    assert load_model(tmp_path / "b.pth").variant == "int2"


def test_weights_that_do_not_fit_are_refused_and_nothing_is_left(tmp_path: Path) -> None:
    source = tmp_path / "alien.pth"
    torch.save({"fc.weight": torch.zeros(3, 3)}, source)
    with pytest.raises(ModelFileCorrupted, match="do not fit"):
        convert_file(source, tmp_path / "out.pth")
    assert not (tmp_path / "out.pth").exists()


def test_unknown_target_version_is_refused(tmp_path: Path, network: CaptionNet) -> None:
    source = write_format1(network, tmp_path / "old.pth")
    with pytest.raises(ModelConfigError, match="target-version"):
        convert_file(source, tmp_path / "new.pth", "7")


def _script(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(REPO / "scripts/convert_model.py"), *args],
                          capture_output=True, text=True, timeout=60, env=dict(os.environ))


def test_runbook_invocation_converts(tmp_path: Path, network: CaptionNet) -> None:
    source = write_format1(network, tmp_path / "best_model.pth")
    output = tmp_path / "best_model_converted.pth"
    done = _script("--input", str(source), "--output", str(output),
                   "--target-version", "current")
    assert done.returncode == 0, done.stderr
    assert "format 1" in done.stdout and f"format {FORMAT_VERSION}" in done.stdout
    assert load_model(output).version == FORMAT_VERSION


def test_script_refuses_a_payload_with_one_line_and_runs_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    source = tmp_path / "evil.pth"

    class Payload:
        def __reduce__(self) -> tuple[Any, ...]:
            return (open, (str(marker), "w"))

    torch.save({"version": 1, "model_state": Payload()}, source)
    done = _script("--input", str(source), "--output", str(tmp_path / "out.pth"))
    assert done.returncode == 1 and not marker.exists()
    assert done.stderr.count("\n") == 1 and "The model file is corrupted" in done.stderr
    assert "Traceback" not in done.stderr
