"""Serving configuration: code defaults → `config/model.yml` → `MODEL_*` environment.

A missing or invalid file is a ModelConfigError naming the file and the key, so the server
can stay up, report `reason: config_invalid`, and tell the operator what to fix.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from mobile_multimodal.errors import ModelConfigError

__all__ = ["DEVICES", "ServeConfig", "load_config", "parse_seconds"]

DEVICES = ("auto", "cpu", "cuda")
"""Accepted values of `device`."""

DEFAULT_LOAD_TIMEOUT = 120.0
"""Seconds a model load may run before it is abandoned (separate from request timeouts)."""

DEFAULT_MAX_IMAGE_BYTES = 4 * 2**20
"""Largest decoded image accepted by /model/inference."""


@dataclass(frozen=True)
class ServeConfig:
    model_dir: Path = Path("/app/models")
    model_path: str = "best_model.pth"
    fallback_model: str | None = "int2_quantized"
    device: str = "auto"
    load_timeout: float = DEFAULT_LOAD_TIMEOUT
    max_image_bytes: int = DEFAULT_MAX_IMAGE_BYTES
    source: str = "<defaults>"

    @property
    def primary_path(self) -> Path:
        path = Path(self.model_path)
        return path if path.is_absolute() else self.model_dir / path


_KEYS = {"model_path", "fallback_model", "device", "load_timeout", "max_image_bytes",
         "model_dir"}


def parse_seconds(value: Any, where: str) -> float:
    """`120`, `120s`, `2m` → seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*", str(value))
    if not match:
        raise ModelConfigError(f"{where}: expected a duration like 30s or 2m, got {value!r}")
    scale = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, None: 1}[match.group(2)]
    return float(match.group(1)) * scale


YAML_FAILURES = (yaml.YAMLError, ValueError, TypeError, OverflowError, RecursionError)
"""What PyYAML raises on bad input: its own errors, and plain ones from building a value
(``2024-13-45`` looks like a date and is not one: ValueError)."""


def _read_yaml(path: Path) -> Mapping[str, Any]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ModelConfigError(f"config file {path} not found") from None
    except OSError as exc:
        raise ModelConfigError(f"config file {path} unreadable: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ModelConfigError(f"config file {path} is not UTF-8 text (byte {exc.start})"
                               ) from None
    loader = yaml.SafeLoader(text)
    try:
        return _parse(loader, path)
    finally:
        loader.dispose()


def _parse(loader: yaml.SafeLoader, path: Path) -> dict[str, Any]:
    """The file's mapping, each value built on its own so an error can name its key."""
    try:
        node = loader.get_single_node()
    except YAML_FAILURES as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise ModelConfigError(f"{where}: invalid YAML: {getattr(exc, 'problem', exc)}") from None
    if node is None:
        return {}
    if not isinstance(node, yaml.MappingNode):
        kind = "a list" if isinstance(node, yaml.SequenceNode) else "a single value"
        raise ModelConfigError(f"{path}: expected a mapping of keys, got {kind}")
    data: dict[str, Any] = {}
    for key_node, value_node in node.value:
        where = f"{path}:{key_node.start_mark.line + 1}"
        key = _build(loader, key_node, f"{where}: a key")
        if not isinstance(key, str):
            raise ModelConfigError(f"{where}: unknown key {key!r} "
                                   f"(known: {', '.join(sorted(_KEYS))})")
        data[key] = _build(loader, value_node, f"{where}: {key}")
    return data


def _build(loader: yaml.SafeLoader, node: yaml.Node, where: str) -> Any:
    try:
        return loader.construct_object(node, deep=True)
    except YAML_FAILURES as exc:
        shown = f" {node.value!r} (quote it if it is text)" if isinstance(
            node, yaml.ScalarNode) else ""
        problem = getattr(exc, "problem", None) or exc
        raise ModelConfigError(f"{where}: invalid value{shown}: {problem}") from None


def _apply(config: ServeConfig, values: Mapping[str, Any], where: str) -> ServeConfig:
    unknown = sorted(set(values) - _KEYS, key=str)
    if unknown:
        raise ModelConfigError(f"{where}: unknown key {unknown[0]!r} "
                               f"(known: {', '.join(sorted(_KEYS))})")
    changes: dict[str, Any] = {}
    for key, value in values.items():
        changes[key] = _coerce(key, value, f"{where}: {key}")
    return replace(config, **changes)


def _coerce(key: str, value: Any, where: str) -> Any:
    if key == "device":
        if value not in DEVICES:
            raise ModelConfigError(f"{where}: expected one of {', '.join(DEVICES)}, "
                                   f"got {value!r}")
        return value
    if key == "load_timeout":
        seconds = parse_seconds(value, where)
        if seconds <= 0:
            raise ModelConfigError(f"{where}: expected a duration above zero like 30s or 2m, "
                                   f"got {value!r}")
        return seconds
    if key == "max_image_bytes":
        # bool is an int to Python; `max_image_bytes: true` is a mistake, not 1 byte
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ModelConfigError(f"{where}: expected a positive integer, got {value!r}")
        return value
    if key == "model_dir":
        if not isinstance(value, str) or not value.strip():
            raise ModelConfigError(f"{where}: expected a directory path (a non-empty string), "
                                   f"got {value!r}")
        return Path(value)
    if key == "fallback_model" and value in (None, "", "none"):
        return None
    if not isinstance(value, str) or not value.strip():
        raise ModelConfigError(f"{where}: expected a non-empty string, got {value!r}")
    return value


def _from_env(env: Mapping[str, str]) -> dict[str, Any]:
    names = {"MODEL_PATH": "model_path", "MODEL_FALLBACK": "fallback_model",
             "MODEL_DEVICE": "device", "MODEL_LOAD_TIMEOUT": "load_timeout",
             "MODEL_DIR": "model_dir"}
    return {key: env[name] for name, key in names.items() if name in env}


def load_config(path: Path | None, env: Mapping[str, str] | None = None,
                model_dir: Path | None = None) -> ServeConfig:
    """Build the config; raises ModelConfigError naming the file (or variable) and key."""
    env = os.environ if env is None else env
    config = ServeConfig()
    if path is not None:
        config = replace(_apply(config, _read_yaml(path), str(path)), source=str(path))
    config = _apply(config, _from_env(env), "environment")
    if model_dir is not None:
        config = replace(config, model_dir=model_dir)
    return config
