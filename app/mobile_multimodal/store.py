"""Fetching published models from a model store (``scripts/download_models.py``).

A store is a directory or an http(s) URL that serves ``manifest.json`` and the files it
lists. A download streams into a temp file beside the destination while hashing, checks
size and sha256 against the store's manifest, keeps the previous file as a backup, then
``os.replace``s it in: the installed model is never half-written, and a mismatch or a full
disk leaves it untouched. This module needs no torch, so it works in a broken image.

Backups: a previous file that matches a recorded checksum is kept as ``NAME.bak`` (or
``BACKUP_DIR/NAME``); one that matches nothing (it is probably the corrupted file being
replaced) goes to ``NAME.bak.unverified`` instead, so it never clobbers a good backup.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import yaml

from mobile_multimodal.errors import (
    ModelChecksumMismatch,
    ModelConfigError,
    ModelError,
    ModelStoreError,
    ModelStoreUnavailable,
)
from mobile_multimodal.files import atomic_file, file_sha256, write_errors
from mobile_multimodal.manifest import (
    MANIFEST,
    MANIFEST_VERSION,
    find_entry,
    parse_manifest,
    read_manifest,
    write_json_atomic,
)

__all__ = [
    "DirectoryStore",
    "DownloadResult",
    "HttpStore",
    "Store",
    "configured_model",
    "download",
    "main",
    "open_store",
]

CHUNK = 1 << 20
"""Bytes read from the store per step."""

HTTP_TIMEOUT = 30.0
"""Seconds an HTTP store may stay silent before the download fails."""

MAX_MANIFEST_BYTES = 1 << 20
"""A manifest larger than this is not a manifest."""

DEFAULT_MODEL = "best_model"
"""Downloaded when neither --model nor a config names one."""

CONFIG_FILE = Path("config/model.yml")
"""The serving config whose ``model``/``model_path`` names the configured model."""


class Store(Protocol):
    """Where published models come from."""

    location: str

    def open(self, file: str) -> Any:
        """A context manager yielding a readable binary stream of ``file``."""


class DirectoryStore:
    """A store that is a local (or mounted) directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.location = str(root)

    @contextmanager
    def open(self, file: str) -> Iterator[BinaryIO]:
        path = self.root / file
        try:
            handle = path.open("rb")
        except FileNotFoundError:
            raise ModelStoreUnavailable(f"store {self.root} has no {file}") from None
        except OSError as exc:
            raise ModelStoreUnavailable(f"cannot read {path}: {exc.strerror}") from None
        with handle:
            yield handle


class HttpStore:
    """A store served over http(s): GET BASE/manifest.json, GET BASE/FILE."""

    def __init__(self, base: str, timeout: float = HTTP_TIMEOUT) -> None:
        self.base = base.rstrip("/")
        self.location = self.base
        self.timeout = timeout

    @contextmanager
    def open(self, file: str) -> Iterator[BinaryIO]:
        url = f"{self.base}/{urllib.parse.quote(file)}"
        try:
            response = urllib.request.urlopen(url, timeout=self.timeout)
        except urllib.error.HTTPError as exc:
            raise ModelStoreUnavailable(f"store answered HTTP {exc.code} for {url}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ModelStoreUnavailable(f"store unreachable: {url}: {reason}") from None
        with response:
            yield response


def open_store(location: str | os.PathLike[str]) -> Store:
    """An HttpStore for http(s) URLs, a DirectoryStore for paths and file:// URLs."""
    text = os.fspath(location)
    scheme = urllib.parse.urlparse(text).scheme
    if scheme in ("http", "https"):
        return HttpStore(text)
    if scheme == "file":
        return DirectoryStore(Path(urllib.parse.unquote(urllib.parse.urlparse(text).path)))
    return DirectoryStore(Path(text))


def _chunks(stream: BinaryIO, source: str) -> Iterator[bytes]:
    """Chunks of a store stream; a failed read is the store's fault, not the disk's."""
    while True:
        try:
            chunk = stream.read(CHUNK)
        except OSError as exc:
            raise ModelStoreUnavailable(f"reading {source} failed: {exc}") from None
        if not chunk:
            return
        yield chunk


def fetch_manifest(store: Store) -> dict[str, Any]:
    """The store's manifest, parsed and checked."""
    with store.open(MANIFEST) as stream:
        raw = b"".join(_chunks(stream, MANIFEST))
    if len(raw) > MAX_MANIFEST_BYTES:
        raise ModelStoreError(f"manifest of {store.location} is over {MAX_MANIFEST_BYTES} bytes")
    return parse_manifest(raw.decode("utf-8", "replace"), f"{store.location}/{MANIFEST}")


@dataclass(frozen=True)
class DownloadResult:
    """What a download did: the installed file, and where the previous one went."""

    name: str
    path: Path
    sha256: str
    size: int
    downloaded: bool
    backup: Path | None = None


def _copy_verified(store: Store, entry: Mapping[str, Any], handle: BinaryIO) -> None:
    """Stream the entry's file into ``handle``, refusing it unless size and sha256 match."""
    source = f"{store.location}/{entry['file']}"
    digest, size, limit = hashlib.sha256(), 0, int(entry["size"])
    with store.open(entry["file"]) as stream:
        for chunk in _chunks(stream, source):
            size += len(chunk)
            if size > limit:
                break  # longer than the manifest says: no point reading the rest
            digest.update(chunk)
            handle.write(chunk)
    actual = digest.hexdigest() if size == limit else f"<{size}+ bytes, expected {limit}>"
    if actual != entry["sha256"]:
        raise ModelChecksumMismatch(source, entry["sha256"], actual)


def _known_good(path: Path, entry: Mapping[str, Any], dest_manifest: Mapping[str, Any] | None
                ) -> bool:
    """Whether ``path`` matches the store's checksum or the one recorded beside it."""
    recorded = {entry["sha256"]}
    if dest_manifest is not None:
        recorded |= {m["sha256"] for m in dest_manifest["models"] if m["file"] == path.name}
    return file_sha256(path) in recorded


def _backup(target: Path, backup_dir: Path | None, verified: bool) -> Path:
    """Copy the installed file aside (atomically) before it is replaced."""
    backup = (backup_dir / target.name) if backup_dir else target.with_name(target.name + ".bak")
    if not verified:
        backup = backup.with_name(backup.name + ".unverified")
    with atomic_file(backup) as handle, target.open("rb") as source:
        shutil.copyfileobj(source, handle, CHUNK)
    return backup


def _safe_manifest(directory: Path) -> dict[str, Any] | None:
    try:
        return read_manifest(directory)
    except ModelConfigError:
        return None  # a broken local manifest is rebuilt from verified files below


def _record(dest: Path, entry: Mapping[str, Any]) -> None:
    """Add the installed entry to dest/manifest.json, keeping only entries whose file is
    present and still matches (a manifest never describes files it did not see)."""
    current = _safe_manifest(dest) or {"models": []}
    kept = [
        m for m in current["models"]
        if m["name"] != entry["name"] and m["file"] != entry["file"]
        and (dest / m["file"]).is_file() and file_sha256(dest / m["file"]) == m["sha256"]
    ]
    models = sorted([*kept, dict(entry)], key=lambda m: str(m["name"]))
    write_json_atomic({"manifest_version": MANIFEST_VERSION, "models": models}, dest / MANIFEST)


def _same_file(store: Store, target: Path, file: str) -> bool:
    if not isinstance(store, DirectoryStore) or not target.exists():
        return False
    with suppress(OSError):
        return (store.root / file).resolve() == target.resolve()
    return False


def download(name: str, store: Store, dest: Path, *, force: bool = False,
             backup_dir: Path | None = None) -> DownloadResult:
    """Install model ``name`` (or an alias) from ``store`` into ``dest``.

    Skips the download when the installed file already matches, unless ``force``.
    """
    entry = find_entry(fetch_manifest(store), name, f"{store.location}/{MANIFEST}")
    target = dest / entry["file"]
    dest_manifest = _safe_manifest(dest)
    exists = target.is_file()
    same = _same_file(store, target, entry["file"])
    if exists and (same or not force) and file_sha256(target) == entry["sha256"]:
        return DownloadResult(entry["name"], target, entry["sha256"], entry["size"], False)
    if same:
        raise ModelChecksumMismatch(str(target), entry["sha256"], file_sha256(target) + (
            "; the store is the destination itself, so there is no good copy to fetch: "
            "pass --store DIR_OR_URL (or set MODEL_STORE) to another store"))
    backup = None
    with atomic_file(target) as handle:
        _copy_verified(store, entry, handle)
        if exists:
            verified = _known_good(target, entry, dest_manifest)
            backup = _backup(target, backup_dir, verified)
    with write_errors(dest / MANIFEST):
        _record(dest, entry)
    return DownloadResult(entry["name"], target, entry["sha256"], entry["size"], True, backup)


def _config_path(env: Mapping[str, str], repo: Path | None) -> Path | None:
    if env.get("MODEL_CONFIG"):
        path = Path(env["MODEL_CONFIG"])
        if not path.is_file():
            raise ModelConfigError(f"MODEL_CONFIG names {path}, which does not exist")
        return path
    for base in (Path.cwd(), repo):
        if base is not None and (base / CONFIG_FILE).is_file():
            return base / CONFIG_FILE
    return None


def configured_model(env: Mapping[str, str] | None = None, repo: Path | None = None) -> str:
    """The model the serving config names (``model``, else ``model_path``), else best_model.

    Looks at env MODEL_CONFIG, else ./config/model.yml, else REPO/config/model.yml.
    """
    path = _config_path(os.environ if env is None else env, repo)
    if path is None:
        return DEFAULT_MODEL
    try:
        config = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ModelConfigError(f"cannot read model config {path}: {exc}") from None
    if config is None:
        return DEFAULT_MODEL
    if not isinstance(config, dict):
        raise ModelConfigError(f"model config {path} must be a mapping of keys")
    value = config.get("model") or config.get("model_path")
    if value is None:
        return DEFAULT_MODEL
    if not isinstance(value, str) or not value.strip():
        raise ModelConfigError(f"model config {path}: 'model_path' must be a file name or path")
    return Path(value.strip()).name


def _parser(default_store: str | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="download_models.py",
        description="Fetch a published model from a model store, verify and install it.")
    parser.add_argument("--model", help="name or alias (default: the one config/model.yml "
                                        "names, else best_model)")
    parser.add_argument("--force", action="store_true",
                        help="download even if the installed file already matches")
    parser.add_argument("--store", default=os.environ.get("MODEL_STORE") or default_store,
                        help="directory or http(s) URL serving manifest.json "
                             "(default: env MODEL_STORE, else the repo's models/)")
    parser.add_argument("--dest", default=os.environ.get("MODEL_DIR") or "/app/models",
                        help="model directory (default: env MODEL_DIR, else /app/models)")
    parser.add_argument("--backup-dir", default=os.environ.get("MODEL_BACKUP_DIR"),
                        help="where the previous file is kept (default: env MODEL_BACKUP_DIR, "
                             "else NAME.bak beside it)")
    return parser


def _describe(result: DownloadResult) -> str:
    if not result.downloaded:
        return f"{result.name}: {result.path} already matches sha256 {result.sha256[:12]}"
    kept = f"; previous file kept as {result.backup}" if result.backup else ""
    return (f"{result.name}: installed {result.path} ({result.size} bytes, sha256 "
            f"{result.sha256[:12]}){kept}")


def main(argv: Sequence[str] | None = None, default_store: str | None = None,
         repo: Path | None = None) -> int:
    """The download_models.py command; exit 1 with a one-line message on any failure."""
    args = _parser(default_store).parse_args(argv)
    try:
        if not args.store:
            raise ModelConfigError("no model store: pass --store DIR_OR_URL or set MODEL_STORE")
        name = args.model or configured_model(repo=repo)
        backup_dir = Path(args.backup_dir) if args.backup_dir else None
        result = download(name, open_store(args.store), Path(args.dest), force=args.force,
                          backup_dir=backup_dir)
    except ModelError as exc:
        print(f"download_models: error: {exc}", file=sys.stderr)
        return 1
    print(_describe(result))
    return 0
