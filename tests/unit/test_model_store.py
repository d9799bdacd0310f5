"""download_models.py: verified, atomic installs from a directory or an http store."""

from __future__ import annotations

import errno
import functools
import http.server
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

import mobile_multimodal.files
from mobile_multimodal.checkpoint import build_checkpoint, save_checkpoint
from mobile_multimodal.data import Vocabulary
from mobile_multimodal.errors import (
    ModelChecksumMismatch,
    ModelConfigError,
    ModelDiskFull,
    ModelStoreUnavailable,
)
from mobile_multimodal.files import file_sha256
from mobile_multimodal.manifest import MANIFEST, write_manifest
from mobile_multimodal.network import CaptionNet, NetConfig
from mobile_multimodal.store import Store, configured_model, download, open_store

REPO = Path(__file__).resolve().parents[2]


def _publish(store: Path, seed: int) -> None:
    """Put freshly built fp32 and int2 checkpoints (weights from ``seed``) and a manifest."""
    torch.manual_seed(seed)
    network = CaptionNet(NetConfig())
    for variant, file in (("fp32", "best_model.pth"), ("int2", "int2_quantized.pth")):
        save_checkpoint(build_checkpoint(network, Vocabulary(), variant), store / file)
    write_manifest(store, {"best_model": 0.5, "int2_quantized": 0.4})


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    store = tmp_path / "store"
    store.mkdir()
    _publish(store, seed=1)
    return store


@pytest.fixture
def http_url(store_dir: Path) -> Iterator[str]:
    handler = functools.partial(_QuietHandler, directory=str(store_dir))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@pytest.fixture(params=["directory", "http"])
def store(request: pytest.FixtureRequest, store_dir: Path) -> Store:
    if request.param == "directory":
        return open_store(store_dir)
    return open_store(request.getfixturevalue("http_url"))


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    return tmp_path / "app-models"


def _leftovers(directory: Path) -> list[str]:
    return [p.name for p in directory.iterdir() if p.name.endswith(".part")]


def test_download_installs_the_file_and_records_only_it(store: Store, store_dir: Path,
                                                        dest: Path) -> None:
    result = download("mobile-mm-llm-int2", store, dest)
    target = dest / "int2_quantized.pth"
    assert result.downloaded and result.path == target and result.backup is None
    assert file_sha256(target) == file_sha256(store_dir / "int2_quantized.pth")
    manifest = json.loads((dest / MANIFEST).read_text())
    assert [m["name"] for m in manifest["models"]] == ["int2_quantized"]  # only what it saw
    assert _leftovers(dest) == []


def test_checksum_mismatch_leaves_the_installed_file_untouched(
        store: Store, store_dir: Path, dest: Path) -> None:
    download("int2_quantized", open_store(store_dir), dest)
    before = (dest / "int2_quantized.pth").read_bytes()
    tampered = store_dir / "int2_quantized.pth"
    tampered.write_bytes(tampered.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(ModelChecksumMismatch) as caught:
        download("int2_quantized", store, dest, force=True)
    assert "checksum mismatch" in str(caught.value)
    assert caught.value.reason == "checksum_mismatch"
    assert (dest / "int2_quantized.pth").read_bytes() == before
    assert _leftovers(dest) == [] and not (dest / "int2_quantized.pth.bak").exists()


def test_truncated_store_file_is_a_checksum_mismatch(store: Store, store_dir: Path,
                                                     dest: Path) -> None:
    victim = store_dir / "best_model.pth"
    victim.write_bytes(victim.read_bytes()[:1000])
    with pytest.raises(ModelChecksumMismatch):
        download("best_model", store, dest)
    assert not (dest / "best_model.pth").exists()


def test_replacement_is_atomic_and_keeps_the_previous_file(store: Store, store_dir: Path,
                                                           dest: Path) -> None:
    download("best_model", store, dest)
    target = dest / "best_model.pth"
    old_bytes = target.read_bytes()
    with target.open("rb") as reader_of_old:  # a reader mid-way keeps seeing the old file
        _publish(store_dir, seed=2)
        result = download("best_model", store, dest, force=True)
        assert reader_of_old.read() == old_bytes
    assert target.read_bytes() != old_bytes
    assert result.backup == dest / "best_model.pth.bak"
    assert result.backup.read_bytes() == old_bytes
    assert _leftovers(dest) == []


def test_a_corrupted_previous_file_never_clobbers_the_good_backup(
        store_dir: Path, dest: Path, tmp_path: Path) -> None:
    store, backups = open_store(store_dir), tmp_path / "backup"
    download("best_model", store, dest)
    download("best_model", store, dest, force=True, backup_dir=backups)
    good_backup = (backups / "best_model.pth").read_bytes()
    (dest / "best_model.pth").write_bytes(b"garbage")
    result = download("best_model", store, dest, force=True, backup_dir=backups)
    assert result.backup == backups / "best_model.pth.unverified"
    assert result.backup.read_bytes() == b"garbage"
    assert (backups / "best_model.pth").read_bytes() == good_backup


def test_a_matching_file_is_not_downloaded_again(store: Store, dest: Path) -> None:
    download("best_model", store, dest)
    inode = (dest / "best_model.pth").stat().st_ino
    result = download("best_model.pth", store, dest)
    assert not result.downloaded and (dest / "best_model.pth").stat().st_ino == inode


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs Linux /dev/full")
def test_full_disk_fails_cleanly(store: Store, dest: Path,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The temp file is /dev/full, where every write fails with ENOSPC, as on a full disk."""
    dest.mkdir()
    placeholder = dest / ".best_model.pth.full.part"

    def full_disk(**_: object) -> tuple[int, str]:
        placeholder.touch()
        return os.open("/dev/full", os.O_WRONLY), str(placeholder)

    monkeypatch.setattr(mobile_multimodal.files.tempfile, "mkstemp", full_disk)
    with pytest.raises(ModelDiskFull) as caught:
        download("best_model", store, dest)
    assert "[Errno 28] No space left on device" in str(caught.value)
    assert caught.value.errno == errno.ENOSPC and caught.value.reason == "disk_full"
    assert not placeholder.exists() and not (dest / "best_model.pth").exists()


def test_unknown_name_lists_the_known_ones(store: Store, dest: Path) -> None:
    with pytest.raises(ModelConfigError, match="mobile-mm-llm-int2"):
        download("resnet", store, dest)


def test_file_missing_from_the_store_is_reported(store: Store, store_dir: Path,
                                                 dest: Path) -> None:
    (store_dir / "int2_quantized.pth").unlink()
    with pytest.raises(ModelStoreUnavailable, match=r"int2_quantized\.pth"):
        download("int2_quantized", store, dest)


def test_a_store_that_is_the_destination_verifies_but_cannot_repair(store_dir: Path) -> None:
    store = open_store(store_dir)
    assert not download("best_model", store, store_dir, force=True).downloaded
    (store_dir / "best_model.pth").write_bytes(b"corrupted in place")
    with pytest.raises(ModelChecksumMismatch, match="destination itself"):
        download("best_model", store, store_dir, force=True)


def _script(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(REPO / "scripts/download_models.py"), *args],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})})


def test_script_installs_and_fails_with_one_line(store_dir: Path, dest: Path,
                                                 http_url: str) -> None:
    done = _script("--model", "mobile-mm-llm-int2", "--store", http_url, "--dest", str(dest))
    assert done.returncode == 0, done.stderr
    assert "installed" in done.stdout and (dest / "int2_quantized.pth").is_file()
    tampered = store_dir / "int2_quantized.pth"
    tampered.write_bytes(b"x" + tampered.read_bytes()[1:])
    failed = _script("--model", "int2_quantized", "--force", "--store", str(store_dir),
                     "--dest", str(dest))
    assert failed.returncode == 1
    assert failed.stderr.count("\n") == 1 and "checksum mismatch" in failed.stderr
    assert "Traceback" not in failed.stderr


def test_script_downloads_the_configured_model(store_dir: Path, dest: Path,
                                               tmp_path: Path) -> None:
    config = tmp_path / "model.yml"
    config.write_text("model_path: /app/models/int2_quantized.pth\ndevice: cpu\n")
    done = _script("--store", str(store_dir), "--dest", str(dest),
                   env={"MODEL_CONFIG": str(config)})
    assert done.returncode == 0, done.stderr
    assert (dest / "int2_quantized.pth").is_file()


@pytest.mark.parametrize(("text", "expected"), [
    ("model_path: best_model.pth\n", "best_model.pth"),
    ("model: mobile-mm-llm-int2\nmodel_path: best_model.pth\n", "mobile-mm-llm-int2"),
    ("device: cpu\n", "best_model"),
    ("", "best_model"),
])
def test_configured_model_reads_model_yml(tmp_path: Path, text: str, expected: str) -> None:
    config = tmp_path / "model.yml"
    config.write_text(text)
    assert configured_model({"MODEL_CONFIG": str(config)}) == expected


def test_configured_model_errors_name_the_file(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert configured_model({}) == "best_model"
    with pytest.raises(ModelConfigError, match=r"nope\.yml"):
        configured_model({"MODEL_CONFIG": str(tmp_path / "nope.yml")})
    broken = tmp_path / "broken.yml"
    broken.write_text("model_path: [unclosed\n")
    with pytest.raises(ModelConfigError, match=r"broken\.yml"):
        configured_model({"MODEL_CONFIG": str(broken)})
