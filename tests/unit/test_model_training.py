"""Training (a few fast steps), the train/evaluate commands, and the shipped models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from mobile_multimodal.checkpoint import FORMAT_VERSION, load_model, state_checksum
from mobile_multimodal.cli_model import evaluate, train
from mobile_multimodal.data import generate
from mobile_multimodal.files import file_sha256
from mobile_multimodal.manifest import MODELS
from mobile_multimodal.training import EVAL_SEED, TrainConfig, evaluate_file, evaluate_network
from mobile_multimodal.training import train as train_networks

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "models"
TINY = TrainConfig(seed=3, train_size=256, epochs=2, batch_size=64, qat_steps=3,
                   eval_size=50, threads=1)


def _quiet(_: str) -> None:
    pass


def test_a_few_steps_reduce_the_loss_and_are_deterministic() -> None:
    first, first_int2 = train_networks(TINY, _quiet)
    second, second_int2 = train_networks(TINY, _quiet)
    assert state_checksum(first.state_dict()) == state_checksum(second.state_dict())
    assert state_checksum(first_int2.state_dict()) == state_checksum(second_int2.state_dict())
    fresh = TrainConfig(**{**TINY.__dict__, "epochs": 0, "qat_steps": 0})
    assert not torch.equal(train_networks(fresh, _quiet)[0].out.weight, first.out.weight)


def test_training_restores_global_torch_settings() -> None:
    threads, rng = torch.get_num_threads(), torch.get_rng_state()
    train_networks(TrainConfig(**{**TINY.__dict__, "epochs": 1, "qat_steps": 1}), _quiet)
    assert torch.get_num_threads() == threads
    assert not torch.are_deterministic_algorithms_enabled()
    assert torch.equal(torch.get_rng_state(), rng)


def test_train_command_writes_three_variants_and_an_honest_manifest(tmp_path: Path) -> None:
    result = CliRunner().invoke(train, ["--out", str(tmp_path), "--train-size", "256",
                                        "--epochs", "1", "--qat-steps", "2", "--eval-size",
                                        "40", "--threads", "1", "--quiet"])
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert [m["name"] for m in manifest["models"]] == [m.name for m in MODELS]
    for entry in manifest["models"]:
        path = tmp_path / entry["file"]
        assert entry["sha256"] == file_sha256(path) and entry["size"] == path.stat().st_size
        assert entry["format_version"] == FORMAT_VERSION
        assert entry["accuracy"] == round(evaluate_file(path, 40), 4)
    assert "accuracy" in result.output and "int2_quantized" in result.output


def test_evaluate_command_prints_accuracy_of_a_shipped_model() -> None:
    result = CliRunner().invoke(evaluate, ["--model", "mobile-mm-llm-int2", "--model-dir",
                                           str(SHIPPED), "--samples", "200"])
    assert result.exit_code == 0, result.output
    assert "exact-match accuracy:" in result.output and "variant=int2" in result.output


def test_evaluate_command_refuses_a_bad_file_without_a_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "best_model.pth"
    bad.write_bytes(b"PK\x03\x04 not really")
    result = CliRunner().invoke(evaluate, ["--model", str(bad)])
    assert result.exit_code == 1
    assert "The model file is corrupted" in result.output and str(bad) in result.output
    assert "Traceback" not in result.output


@pytest.fixture(scope="module")
def shipped_manifest() -> dict[str, dict[str, object]]:
    manifest = json.loads((SHIPPED / "manifest.json").read_text())
    return {m["name"]: m for m in manifest["models"]}


def test_shipped_manifest_describes_the_committed_files(
        shipped_manifest: dict[str, dict[str, object]]) -> None:
    assert set(shipped_manifest) == {m.name for m in MODELS}
    for entry in shipped_manifest.values():
        path = SHIPPED / str(entry["file"])
        assert entry["sha256"] == file_sha256(path) and entry["size"] == path.stat().st_size
        assert entry["format_version"] == FORMAT_VERSION


def test_shipped_models_meet_their_targets(
        shipped_manifest: dict[str, dict[str, object]]) -> None:
    images, captions, _ = generate(2000, EVAL_SEED)  # the set the manifest was scored on
    accuracy = {}
    for name, entry in shipped_manifest.items():
        loaded = load_model(SHIPPED / str(entry["file"]))
        score = evaluate_network(loaded.network, loaded.vocabulary, images, captions)
        accuracy[name] = round(score, 4)
    assert accuracy == {name: e["accuracy"] for name, e in shipped_manifest.items()}
    assert accuracy["best_model"] >= 0.90
    assert accuracy["int8_quantized"] >= accuracy["best_model"] - 0.02
    sizes = {name: int(str(e["size"])) for name, e in shipped_manifest.items()}
    assert sizes["int2_quantized"] * 8 <= sizes["best_model"]
