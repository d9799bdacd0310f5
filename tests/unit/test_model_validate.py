"""validate_model_file: what the server checks before every load, in the runbook's words."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import torch

import mobile_multimodal.model
from mobile_multimodal.convert import convert_file
from mobile_multimodal.errors import (
    ModelDependencyError,
    ModelFileCorrupted,
    ModelFileMismatch,
    ModelFormatTooOld,
    ModelPermissionDenied,
)
from mobile_multimodal.files import file_sha256
from mobile_multimodal.manifest import file_checksum_ok, manifest_sha256, read_manifest
from mobile_multimodal.model import MobileMultiModalLLM
from mobile_multimodal.validate import validate_model_file

SHIPPED = Path(__file__).resolve().parents[2] / "models"


@pytest.fixture
def models(tmp_path: Path) -> Path:
    """A copy of the shipped models/ (files and manifest)."""
    return Path(shutil.copytree(SHIPPED, tmp_path / "models"))


def test_a_published_file_validates_against_its_manifest(models: Path) -> None:
    checked = validate_model_file(models / "best_model.pth")
    assert checked.checksum_ok is True
    assert checked.sha256 == manifest_sha256(models / "best_model.pth")
    assert checked.raw["version"] == 2
    assert MobileMultiModalLLM.from_pretrained("best_model", model_dir=models).checksum_ok


def test_a_file_the_manifest_does_not_list_loads_unverified(models: Path) -> None:
    shutil.copy(models / "int8_quantized.pth", models / "experiment.pth")
    assert validate_model_file(models / "experiment.pth").checksum_ok is None
    assert file_checksum_ok(models / "experiment.pth") is None


def test_missing_is_file_not_found(models: Path) -> None:
    (models / "best_model.pth").unlink()
    with pytest.raises(FileNotFoundError, match="FileNotFoundError: model file not found"):
        validate_model_file(models / "best_model.pth")
    assert file_checksum_ok(models / "best_model.pth") is None


def test_empty_is_corrupted(models: Path) -> None:
    (models / "best_model.pth").write_bytes(b"")
    with pytest.raises(ModelFileCorrupted, match=r"The model file is corrupted.*empty"):
        validate_model_file(models / "best_model.pth")


def test_truncated_is_corrupted_before_it_is_a_checksum_mismatch(models: Path) -> None:
    path = models / "best_model.pth"
    path.write_bytes(path.read_bytes()[:200_000])
    with pytest.raises(ModelFileCorrupted) as caught:
        validate_model_file(path)
    assert type(caught.value) is ModelFileCorrupted and caught.value.reason == "corrupted"
    assert file_checksum_ok(path) is False


def test_another_valid_checkpoint_under_a_published_name_is_a_checksum_mismatch(
        models: Path) -> None:
    shutil.copy(models / "int8_quantized.pth", models / "best_model.pth")
    with pytest.raises(ModelFileMismatch) as caught:
        validate_model_file(models / "best_model.pth")
    assert caught.value.reason == "checksum_mismatch"
    assert "ValueError: The model file is corrupted" in str(caught.value)
    assert "does not match the manifest" in str(caught.value)


def test_old_format_wins_over_checksum_and_converting_in_place_records_it(
        models: Path) -> None:
    path = models / "best_model.pth"
    model = MobileMultiModalLLM.from_pretrained(str(path))
    torch.save(model.network.state_dict(), path)  # format 0, as old releases wrote it
    with pytest.raises(ModelFormatTooOld, match=r"convert_model\.py"):
        validate_model_file(path)
    convert_file(path, path)
    manifest = read_manifest(models)
    assert manifest is not None
    entry = next(m for m in manifest["models"] if m["file"] == "best_model.pth")
    assert entry["sha256"] == file_sha256(path) and entry["format_version"] == 2
    assert validate_model_file(path).checksum_ok is True


def validate_as_nobody(path: Path) -> str:
    """validate_model_file in a forked child that gave up root: denied, ok or other.

    The interpreter is already loaded, so nothing needs to be executable by that user.
    """
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through its exit status
        status = 3
        try:
            os.setgid(65534)
            os.setuid(65534)
            validate_model_file(path)
            status = 1
        except ModelPermissionDenied as exc:
            status = 0 if str(exc).startswith("PermissionError") else 2
        except BaseException:
            status = 2
        finally:
            os._exit(status)
    _, status = os.waitpid(pid, 0)
    return {0: "denied", 1: "ok"}.get(os.waitstatus_to_exitcode(status), "other")


def test_unreadable_is_permission_denied(models: Path) -> None:
    path = models / "best_model.pth"
    if os.geteuid() != 0:
        path.chmod(0)
        with pytest.raises(ModelPermissionDenied, match="PermissionError"):
            validate_model_file(path)
        return
    # Root reads files whatever their mode: ask as an unprivileged user, on a copy that user
    # can reach, once readable (the control) and once not.
    folder = Path(tempfile.mkdtemp(prefix="perm-"))
    try:
        folder.chmod(0o755)
        copy = folder / "best_model.pth"
        shutil.copy(path, copy)
        copy.chmod(0o644)
        assert validate_as_nobody(copy) == "ok"
        copy.chmod(0)
        assert validate_as_nobody(copy) == "denied"
    finally:
        shutil.rmtree(folder)


def test_a_missing_runtime_module_fails_the_load_not_the_first_request(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mobile_multimodal.model, "RUNTIME_MODULES",
                        ("numpy", "no_such_module_for_this_test"))
    with pytest.raises(ModelDependencyError, match="ImportError: No module named") as caught:
        MobileMultiModalLLM.from_pretrained("best_model", model_dir=SHIPPED)
    assert caught.value.reason == "import_error"


def test_importing_the_class_stays_light_for_the_healthcheck() -> None:
    """HEALTHCHECK imports MobileMultiModalLLM every minute: no torch, numpy or PIL."""
    code = ("import sys\nfrom mobile_multimodal import MobileMultiModalLLM\n"
            "heavy = [m for m in ('torch', 'numpy', 'PIL') if m in sys.modules]\n"
            "assert not heavy, heavy\nassert callable(MobileMultiModalLLM.health_check)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
