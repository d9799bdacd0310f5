"""Which Docker engine a target lives on: `docker_host`, its `tls` files, `swarm_service`.

A target without `docker_host` is on the engine the environment names (DOCKER_HOST, else
the local socket), as before. `unix:///path` is another socket on this machine; `tcp://`
is another host and must say `tls: {ca, cert, key}` (an engine's API is root on its host:
it is never reached in clear). Relative TLS paths are relative to the config file, and
each must exist and be readable: `remediator validate` names the target of one that is not.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from remediator.core._schema import Checker, expect_str, join_field
from remediator.core._yaml import child_line

__all__ = ["ENGINE_KEYS", "TLS_KEYS", "EngineFields", "TlsFiles", "check_engine"]

ENGINE_KEYS = ("docker_host", "tls", "swarm_service")
"""Target keys this module reads (config.py allows them beside its own)."""

TLS_KEYS = ("ca", "cert", "key")

_SCHEMES = ("unix://", "tcp://")


@dataclass(frozen=True)
class TlsFiles:
    """PEM files for a tcp:// engine: the CA that signed its certificate, and our pair."""

    ca: str
    cert: str
    key: str


@dataclass(frozen=True)
class EngineFields:
    """What a target says about where it runs (all optional)."""

    docker_host: str | None = None
    tls: TlsFiles | None = None
    swarm_service: str | None = None


def _docker_host(value: object) -> str:
    text = expect_str(value).strip()
    if not text.startswith(_SCHEMES) or len(text) <= len("unix://"):
        raise ValueError(f"expected unix:///path/to/docker.sock or tcp://host:2376, "
                         f"got {text!r}")
    return text


def _readable(path: Path) -> str | None:
    """Why `path` cannot be used as a TLS file, or None."""
    if not path.exists():
        return "no such file"
    if not path.is_file():
        return "not a regular file"
    if not os.access(path, os.R_OK):
        return "not readable by this user"
    return None


def check_engine(checker: Checker, raw: dict[str, Any], field: str, name: str | None,
                 base: Path) -> EngineFields:
    """Read a target's engine keys; problems name the target and the file at fault."""
    host = checker.convert(raw, "docker_host", field, _docker_host)
    service = checker.string(raw, "swarm_service", field)
    tls = _tls(checker, raw, field, name, base) if "tls" in raw else None
    who = f"target {name!r}" if name else "this target"
    if host and host.startswith("tcp://") and "tls" not in raw:
        checker.at(raw, "docker_host", field, f"{who}: a tcp:// engine needs tls: "
                   "{ca, cert, key} (the Docker API is never reached in clear)")
    if "tls" in raw and not (host and host.startswith("tcp://")):
        checker.at(raw, "tls", field, f"{who}: tls applies to a tcp:// docker_host only")
    return EngineFields(host, tls, service)


def _tls(checker: Checker, raw: dict[str, Any], parent: str, name: str | None,
         base: Path) -> TlsFiles | None:
    field = join_field(parent, "tls")
    tls = checker.mapping(raw["tls"], field, child_line(raw, "tls"))
    if tls is None:
        return None
    checker.keys(tls, field, TLS_KEYS, TLS_KEYS)
    paths: dict[str, str] = {}
    for key in TLS_KEYS:
        text = checker.string(tls, key, field)
        if text is None:
            continue
        path = Path(text) if Path(text).is_absolute() else base / text
        problem = _readable(path)
        if problem:
            checker.at(tls, key, field, f"target {name or '?'!r}: {path}: {problem} "
                       "(give the PEM file's path, absolute or relative to this config)")
        paths[key] = str(path)
    if len(paths) < len(TLS_KEYS):
        return None
    return TlsFiles(paths["ca"], paths["cert"], paths["key"])
