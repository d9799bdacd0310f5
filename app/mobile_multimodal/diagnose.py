"""``modelserver diagnose --json``: the runbook's first actions and investigation, one report.

runbooks/model-load-failure.md, "First three minutes: what is wrong", as functions:

    ask_app              what the app itself says now (its /model/health ``reason``)
    missing_modules      every package the server imports is importable (scenario 6)
    read_settings        config/model.yml and MODEL_* as the app reads them (scenario 7)
    gpu_finding          a GPU asked for where none is visible (scenario 3)
    examine, judge       each model file: exists, mode, owner, readable, sha256 against the
                         manifest; a file that is not the published one gets its zip CRCs
                         checked, then torch's own weights-only read (scenarios 1, 4, 5)
    resources            the cgroup's memory, the model volume's free space (scenarios 2, disk)

It must answer when the app's own dependencies are broken (scenario 6), so it runs on the
standard library: nothing here imports torch, PIL or numpy at import time, and the modules
it takes from the app (errors, manifest, files) do not either. torch is imported only for
the weights-only read, and only when it imports; PyYAML only for the config, likewise.

The JSON it prints is the playbook's contract (``steps.check.data`` in
playbooks/model_load_failure.yml): ``findings`` start with the scenario's name, which the
classify step matches. It exits 0 whenever it printed a report: findings are evidence.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import sys
import urllib.request
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mobile_multimodal.errors import ModelConfigError
from mobile_multimodal.files import file_sha256
from mobile_multimodal.manifest import find_entry, manifest_sha256, read_manifest, resolve_name

__all__ = ["CURRENT_FORMAT", "DEPENDENCIES", "Settings", "diagnose", "examine", "main"]

CURRENT_FORMAT = 2
"""The checkpoint format this release reads (checkpoint.FORMAT_VERSION; a test ties them)."""

DEPENDENCIES = ("torch", "numpy", "PIL", "yaml", "flask", "gunicorn", "prometheus_client",
                "mobile_multimodal")
"""Every package the server imports (the runbook's `pip list | grep`)."""

GPU_DEVICES = ("/dev/nvidiactl", "/dev/nvidia0", "/proc/driver/nvidia/version")
"""Where a visible NVIDIA GPU shows in a container."""

DISK_LOW_BYTES = 16 << 20
"""Less free space than this on the model volume is scenario 'disk full'."""

APP_TIMEOUT_S = 3.0
"""How long the app may take to answer /model/health."""

Report = dict[str, Any]
Found = Callable[[str], None]


@dataclass(frozen=True)
class Settings:
    """What the app would load: the config file and MODEL_* as the app itself merges them."""

    model_path: str = "best_model.pth"
    fallback_model: str | None = "int2_quantized"
    device: str = "auto"


# -- What the app says -------------------------------------------------------------------------
def ask_app(url: str) -> tuple[Any, str | None]:
    """(the app's /model/health body, None) or (None, why it did not answer).

    A one-shot connection without proxies: none is left open to slow a restart."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url.rstrip("/") + "/model/health", timeout=APP_TIMEOUT_S) as answer:
            return json.load(answer), None
    except Exception as exc:  # down, refusing, slow, not JSON: all evidence
        return None, f"{type(exc).__name__}: {exc}"


# -- Check Dependencies ------------------------------------------------------------------------
def missing_modules(names: Sequence[str] = DEPENDENCIES) -> list[str]:
    """The packages that cannot be imported, found without importing them (torch is slow)."""
    missing = []
    for name in names:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            spec = None
        if spec is None:
            missing.append(name)
    return missing


# -- The configuration (scenario 7) ------------------------------------------------------------
def read_settings(config_file: str, env: Mapping[str, str]) -> tuple[Settings, Report]:
    """The settings the app would use, and the config's report (ok, error).

    Read with the app's own loader (mobile_multimodal.config) so the diagnosis refuses what
    the app refuses, word for word. Without PyYAML the file cannot be read: the dependency
    check says why, and the environment's values still count."""
    report: Report = {"path": config_file, "ok": True, "error": None}
    try:
        from mobile_multimodal.config import ServeConfig, load_config
    except ImportError as exc:
        report.update(ok=None, error=f"not checked: {exc}")
        return _env_settings(env), report
    try:
        config = load_config(Path(config_file), env)
    except ModelConfigError as exc:
        report.update(ok=False, error=" ".join(str(exc).split()))
        try:
            config = load_config(None, env)
        except ModelConfigError:
            config = ServeConfig()
    return Settings(config.model_path, config.fallback_model, config.device), report


def _env_settings(env: Mapping[str, str]) -> Settings:
    fallback = env.get("MODEL_FALLBACK", Settings.fallback_model)
    return Settings(env.get("MODEL_PATH") or Settings.model_path,
                    None if fallback in ("", "none") else fallback,
                    env.get("MODEL_DEVICE") or Settings.device)


# -- CUDA (scenario 3) -------------------------------------------------------------------------
def gpu_visible() -> bool:
    return any(os.path.exists(path) for path in GPU_DEVICES)


def gpu_finding(device: str, gpu: bool, env: Mapping[str, str]) -> str | None:
    """cuda asked for, no GPU visible, and not already forced to cpu (CUDA_VISIBLE_DEVICES="")."""
    if device == "cuda" and not gpu and env.get("CUDA_VISIBLE_DEVICES") != "":
        return "cuda: the config asks for device cuda but this container sees no GPU " \
               "(no /dev/nvidia*)"
    return None


# -- Validate Model Files ----------------------------------------------------------------------
def model_file(name: str, model_dir: Path) -> Path:
    """The file a model name stands for, as the app resolves it (file name, name or alias)."""
    if name.endswith(".pth") or "/" in name:
        return model_dir / name
    try:
        manifest = read_manifest(model_dir)
        if manifest is not None:
            return model_dir / find_entry(manifest, name, str(model_dir))["file"]
        return model_dir / resolve_name(name).file
    except ModelConfigError:
        return model_dir / f"{name}.pth"


def examine(path: Path, deep: bool, model_dir: Path) -> Report:
    """A model file as the app's user sees it; ``deep`` reads a file that is not the
    published one (its zip CRCs, then its checkpoint format)."""
    info: Report = {"path": str(path), "exists": False}
    try:
        stat = path.stat()
    except FileNotFoundError:
        return info
    except OSError as exc:
        info.update(exists=None, readable=False, error=str(exc))
        return info
    info.update(exists=True, size=stat.st_size, mode=f"{stat.st_mode & 0o7777:04o}",
                uid=stat.st_uid, gid=stat.st_gid)
    try:
        digest = file_sha256(path)
    except OSError as exc:
        info.update(readable=False, error=str(exc))
        return info
    expected = manifest_sha256(path) or manifest_sha256(model_dir / path.name)
    info.update(readable=True, sha256=digest,
                checksum_ok=None if expected is None else digest == expected)
    if deep and not info["checksum_ok"]:
        _read_format(path, info)
    return info


def _read_format(path: Path, info: Report) -> None:
    """Not the published bytes: the zip's own CRCs, then torch's weights-only read (the
    app's own reader), which tells the format and refuses code without running it."""
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
        if bad:
            raise ValueError(f"zip member {bad} fails its CRC")
        version = _weights_only_format(path)
    except Exception as exc:
        cause = getattr(exc, "cause", None) or f"{type(exc).__name__}: {exc}"
        info["error"] = " ".join(str(cause).split())[:300]
        return
    if version is None:
        info["weights_only"] = "skipped: torch does not import here"
    else:
        info["format_version"] = version


def _weights_only_format(path: Path) -> int | None:
    """torch.load(path, weights_only=True) through the app's reader; None without torch."""
    try:
        from mobile_multimodal.checkpoint import format_version, read_checkpoint
    except ImportError:
        return None
    return format_version(read_checkpoint(path), str(path))


def judge(role: str, info: Report, uid: int, current: int, found: Found) -> None:
    """The finding one file's report calls for, if any (the first that applies)."""
    path = info["path"]
    if info["exists"] is False:
        found(f"file_missing_or_corrupted: {role} model {path} does not exist")
    elif not info.get("readable"):
        found(f"permission_denied: {role} model {path} is not readable by uid {uid} "
              f"(mode {info.get('mode')}, owner {info.get('uid')}:{info.get('gid')})")
    elif info.get("error"):
        found(f"file_missing_or_corrupted: {role} model {path} is corrupted ({info['error']})")
    elif isinstance(info.get("format_version"), int) and info["format_version"] < current:
        found(f"model_format: {role} model {path} uses checkpoint format version "
              f"{info['format_version']}, this release reads {current}")
    elif info.get("checksum_ok") is False:
        found(f"file_missing_or_corrupted: {role} model {path} does not match the "
              "manifest's sha256")


# -- Check Available Resources -----------------------------------------------------------------
def _number(*paths: str) -> int | None:
    for path in paths:
        try:
            text = Path(path).read_text().strip()
        except OSError:
            continue
        return int(text) if text.isdigit() else None
    return None


def resources(model_dir: Path, found: Found) -> Report:
    """The cgroup's memory (v2, else v1) and the model volume's free space."""
    memory = {"used": _number("/sys/fs/cgroup/memory.current",
                              "/sys/fs/cgroup/memory/memory.usage_in_bytes"),
              "limit": _number("/sys/fs/cgroup/memory.max",
                               "/sys/fs/cgroup/memory/memory.limit_in_bytes")}
    disk = shutil.disk_usage(model_dir)
    if disk.free < DISK_LOW_BYTES:
        found(f"disk_full: only {disk.free} bytes free on {model_dir}")
    return {"memory": memory, "disk": {"free": disk.free, "total": disk.total}}


# -- The whole investigation -------------------------------------------------------------------
def diagnose(model_dir: Path, backup_dir: Path, config_file: str, app_url: str,
             current: int = CURRENT_FORMAT, env: Mapping[str, str] | None = None) -> Report:
    """Every check, in the runbook's order; the report the playbook's later steps read."""
    env = os.environ if env is None else env
    report: Report = {"findings": [], "uid": os.getuid(), "gid": os.getgid()}
    found: Found = report["findings"].append
    report["app"], error = ask_app(app_url)
    if error:
        report["app_error"] = error
    report["missing_modules"] = missing_modules()
    for name in report["missing_modules"]:
        found(f"missing_dependency: module {name} cannot be imported in this image")
    settings, report["config"] = read_settings(config_file, env)
    if report["config"]["ok"] is False:
        found(f"configuration: {report['config']['error']}")
    gpu = gpu_visible()
    report.update(device=settings.device, gpu_visible=gpu,
                  cuda_visible_devices=env.get("CUDA_VISIBLE_DEVICES"))
    cuda = gpu_finding(settings.device, gpu, env)
    if cuda:
        found(cuda)
    _examine_models(report, settings, model_dir, backup_dir, current)
    report.update(resources(model_dir, found))
    return report


def _examine_models(report: Report, settings: Settings, model_dir: Path, backup_dir: Path,
                    current: int) -> None:
    found: Found = report["findings"].append
    primary = model_file(settings.model_path, model_dir)
    report["primary"] = examine(primary, True, model_dir)
    judge("primary", report["primary"], report["uid"], current, found)
    if settings.fallback_model:
        report["fallback"] = examine(model_file(settings.fallback_model, model_dir), False,
                                     model_dir)
        judge("fallback", report["fallback"], report["uid"], current, found)
    backup = examine(backup_dir / primary.name, False, model_dir)
    backup["usable"] = bool(backup.get("readable") and backup.get("checksum_ok"))
    report["backup"] = backup


# -- The command -------------------------------------------------------------------------------
def parser() -> argparse.ArgumentParser:
    env = os.environ
    cli = argparse.ArgumentParser(
        prog="modelserver diagnose",
        description="Why the model does not load: the runbook's first checks, run inside the "
                    "serving container as the app's user. Needs nothing but the standard "
                    "library, so it answers when the app's own dependencies are broken.")
    cli.add_argument("--json", action="store_true", help="print the report as one JSON line")
    cli.add_argument("--model-dir", type=Path, default=Path(env.get("MODEL_DIR") or "/app/models"))
    cli.add_argument("--backup-dir", type=Path, default=Path("/backup/models"))
    cli.add_argument("--config", default=env.get("MODEL_CONFIG") or "/app/config/model.yml")
    cli.add_argument("--app-url", default=f"http://127.0.0.1:{env.get('PORT') or '8080'}")
    cli.add_argument("--format-version", type=int, default=CURRENT_FORMAT,
                     help="the checkpoint format this release reads")
    return cli


def main(argv: Sequence[str] | None = None) -> int:
    """``modelserver diagnose [--json] ...``; 0 whenever a report was printed."""
    args = parser().parse_args(argv)
    report = diagnose(args.model_dir, args.backup_dir, args.config, args.app_url,
                      args.format_version)
    if args.json:
        print(json.dumps(report))
    else:
        print("\n".join(report["findings"]) or "no findings: the files, config, dependencies "
                                                 "and resources look right")
    return 0


if __name__ == "__main__":  # python -m mobile_multimodal.diagnose
    sys.exit(main())

