"""config/remediator.yml: code defaults, then the YAML file, then REMEDIATOR_* variables.

Keys are flat so each has exactly one environment override, `REMEDIATOR_` + the key in
upper case (`prometheus_url` -> `REMEDIATOR_PROMETHEUS_URL`). Targets are only read from
the file. The webhook token is never in the file: the file names the variable holding it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from remediator.core import defaults
from remediator.core._schema import Checker, expect_str, join_field
from remediator.core._yaml import child_line, load_yaml_file
from remediator.core.engines import ENGINE_KEYS, check_engine
from remediator.core.problems import Problem, format_problems
from remediator.core.targets import Target
from remediator.core.units import parse_duration, parse_size
from remediator.errors import ConfigError

__all__ = ["Mode", "RemediatorConfig", "check_config_data", "check_config_file", "load_config"]


class Mode(StrEnum):
    """What Remediator may do: `act` runs fixes, `observe` only diagnoses and records."""

    ACT = "act"
    OBSERVE = "observe"


@dataclass(frozen=True)
class RemediatorConfig:
    """Everything config/remediator.yml (plus defaults and environment) says."""

    targets: list[Target] = field(default_factory=list)
    mode: Mode = Mode.ACT  # defaults.DEFAULT_MODE
    alertmanager_url: str = defaults.DEFAULT_ALERTMANAGER_URL
    prometheus_url: str = defaults.DEFAULT_PROMETHEUS_URL
    # Basic auth for Prometheus and Alertmanager (their --web.config.file): the password is
    # read from this file (`make up` writes it, 0600); None sends no credentials.
    monitoring_username: str = defaults.DEFAULT_MONITORING_USERNAME
    monitoring_password_file: str | None = None
    webhook_token_env: str = defaults.DEFAULT_WEBHOOK_TOKEN_ENV
    webhook_token: str | None = None
    max_runs_per_hour: int = defaults.DEFAULT_MAX_RUNS_PER_HOUR
    concurrency: int = defaults.DEFAULT_CONCURRENCY
    stability_window_s: float = defaults.DEFAULT_STABILITY_WINDOW_S
    db_path: str = defaults.DEFAULT_DB_PATH
    playbooks_dir: str = defaults.DEFAULT_PLAYBOOKS_DIR
    escalation_path: str = defaults.DEFAULT_ESCALATION_PATH
    host: str = defaults.DEFAULT_HOST
    port: int = defaults.DEFAULT_PORT
    source: str | None = None

    def target(self, name: str) -> Target | None:
        """The declared target called `name`, if any."""
        return next((t for t in self.targets if t.name == name), None)


def _positive_int(value: object) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"expected a positive integer, got {value!r}")
    return value


def _port(value: object) -> int:
    port = _positive_int(value)
    if port > 65535:
        raise ValueError(f"expected a port number (1-65535), got {port}")
    return port


def _url(value: object) -> str:
    text = expect_str(value).rstrip("/")
    if not text.startswith(("http://", "https://")):
        raise ValueError(f"expected an http:// or https:// URL, got {text!r}")
    return text


def _mode(value: object) -> Mode:
    if value not in ("act", "observe"):
        raise ValueError(f"expected 'act' or 'observe', got {value!r}")
    return Mode(str(value))


# key -> (RemediatorConfig field, parser). Each key is also REMEDIATOR_<KEY> in the env.
_SCALARS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "mode": ("mode", _mode),
    "alertmanager_url": ("alertmanager_url", _url),
    "prometheus_url": ("prometheus_url", _url),
    "monitoring_username": ("monitoring_username", expect_str),
    "monitoring_password_file": ("monitoring_password_file", expect_str),
    "webhook_token_env": ("webhook_token_env", expect_str),
    "max_runs_per_hour": ("max_runs_per_hour", _positive_int),
    "concurrency": ("concurrency", _positive_int),
    "stability_window": ("stability_window_s", parse_duration),
    "db_path": ("db_path", expect_str),
    "playbooks_dir": ("playbooks_dir", expect_str),
    "escalation_path": ("escalation_path", expect_str),
    "host": ("host", expect_str),
    "port": ("port", _port),
}
_TARGET_KEYS = ("name", "selector", "container", "base_url", "backup_path", "bounds",
                "description", "config_files", "write_paths", *ENGINE_KEYS)
_BOUNDS_KEYS = ("max_memory", "min_cpus", "max_cpus")


def load_config(
    path: str | Path | None = defaults.DEFAULT_CONFIG_PATH,
    env: Mapping[str, str] | None = None,
) -> RemediatorConfig:
    """Read the layered config. `path=None` means defaults and environment only.

    Raises ConfigError naming the file (or variable), line and key of every problem.
    """
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    if path is not None:
        values, problems = check_config_file(Path(path))
        if problems:
            raise ConfigError(f"invalid config:\n{format_problems(problems)}")
    values.update(_from_env(env))
    token = env.get(values.get("webhook_token_env", defaults.DEFAULT_WEBHOOK_TOKEN_ENV))
    return RemediatorConfig(**values, webhook_token=token or None,
                            source=str(path) if path is not None else None)


def check_config_file(path: Path) -> tuple[dict[str, Any], list[Problem]]:
    """Read and check a config file: RemediatorConfig keyword arguments and problems."""
    data, problems = load_yaml_file(path)
    if problems:
        return {}, problems
    return check_config_data(data, str(path))


def check_config_data(data: object, file: str) -> tuple[dict[str, Any], list[Problem]]:
    """RemediatorConfig keyword arguments from parsed YAML, and the problems found.

    Relative paths in it (a target's tls files) are relative to `file`'s folder."""
    checker = Checker(file)
    root = checker.mapping({} if data is None else data, "", 1)
    if root is None:
        return {}, checker.problems
    checker.keys(root, "", [*_SCALARS, "targets"])
    if "webhook_token" in root:
        checker.at(root, "webhook_token", "", "never put the token in the file: set it in the "
                   "environment variable named by webhook_token_env")
    values = {field_name: parsed for key, (field_name, parse) in _SCALARS.items()
              if (parsed := checker.convert(root, key, "", parse)) is not None}
    values["targets"] = _targets(checker, root, Path(file).parent)
    return values, checker.problems


def _targets(checker: Checker, root: dict[str, Any], base: Path) -> list[Target]:
    items = root.get("targets", [])
    if not isinstance(items, list):
        checker.at(root, "targets", "", "expected a list of targets")
        return []
    targets = [t for i, item in enumerate(items)
               if (t := _target(checker, items, i, item, base))]
    _check_unique_names(checker, items)
    return targets


def _target(checker: Checker, items: list[Any], index: int, item: object,
            base: Path) -> Target | None:
    field_name = join_field("targets", index)
    raw = checker.mapping(item, field_name, child_line(items, index))
    if raw is None:
        return None
    before = len(checker.problems)
    # A Swarm service's replicas are found from the service: it names no container.
    required = ("name", "selector", "base_url") + (
        () if "swarm_service" in raw else ("container",))
    checker.keys(raw, field_name, _TARGET_KEYS, required)
    name = checker.string(raw, "name", field_name)
    selector = checker.str_map(raw, "selector", field_name) if "selector" in raw else None
    engine = check_engine(checker, raw, field_name, name, base)
    if "container" in raw and engine.swarm_service:
        checker.at(raw, "container", field_name, "give container or swarm_service, not both "
                   "(a service's container is the alerting replica's task)")
    container = engine.swarm_service or checker.string(raw, "container", field_name)
    base_url = checker.convert(raw, "base_url", field_name, _url)
    backup = checker.string(raw, "backup_path", field_name)
    bounds = _bounds(checker, raw, field_name)
    files = checker.convert(raw, "config_files", field_name, _config_files) or ()
    writable = checker.convert(raw, "write_paths", field_name, _config_files) or ()
    if len(checker.problems) > before or not (name and selector and container and base_url):
        return None
    return Target(name=name, selector=selector, container=container, base_url=base_url,
                  backup_path=backup, description=str(raw.get("description", "")),
                  config_files=files, write_paths=writable, docker_host=engine.docker_host,
                  tls=engine.tls, swarm_service=engine.swarm_service, **bounds)


def _config_files(value: object) -> tuple[str, ...]:
    """Absolute paths inside the container, recorded with the target's last-known-good."""
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError("expected a list of absolute paths inside the container")
    for item in value:
        if not item.startswith("/") or ".." in item.split("/") or "\x00" in item:
            raise ValueError(f"expected an absolute path inside the container, got {item!r}")
    return tuple(value)


def _bounds(checker: Checker, raw: dict[str, Any], parent: str) -> dict[str, Any]:
    if "bounds" not in raw:
        return {}
    field_name = join_field(parent, "bounds")
    bounds = checker.mapping(raw["bounds"], field_name, child_line(raw, "bounds"))
    if bounds is None:
        return {}
    checker.keys(bounds, field_name, _BOUNDS_KEYS)
    cpu_min = checker.convert(bounds, "min_cpus", field_name, _cpus)
    cpu_max = checker.convert(bounds, "max_cpus", field_name, _cpus)
    if (cpu_min is None) != (cpu_max is None) or (cpu_min or 0) > (cpu_max or 0):
        checker.add(child_line(raw, "bounds"), field_name,
                    "set both min_cpus and max_cpus, with min_cpus <= max_cpus")
    return {"max_memory": checker.convert(bounds, "max_memory", field_name, parse_size),
            "cpu_min": cpu_min, "cpu_max": cpu_max}


def _cpus(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ValueError(f"expected a positive number of CPUs, got {value!r}")
    return float(value)


def _check_unique_names(checker: Checker, items: list[Any]) -> None:
    """Duplicate names, and equal selectors (which would make matching ambiguous)."""
    names: set[str] = set()
    selectors: dict[str, str] = {}
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            continue
        name = item.get("name")
        if not isinstance(name, str):  # _target reported it; a list name is not hashable
            continue
        if name in names:
            checker.at(items, index, "targets", f"duplicate target name {name!r}")
        names.add(name)
        selector = item.get("selector")
        # Only a valid selector (strings only; _target reported the rest) can be sorted.
        valid = isinstance(selector, dict) and all(
            isinstance(k, str) and isinstance(v, str) for k, v in selector.items())
        key = repr(sorted(selector.items())) if valid and selector else ""
        if key and key in selectors:
            checker.at(items, index, "targets", f"same selector as target {selectors[key]!r}: "
                       "an alert could not tell them apart")
        selectors.setdefault(key, str(item.get("name")))


def _from_env(env: Mapping[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key, (field_name, parse) in _SCALARS.items():
        name = defaults.ENV_PREFIX + key.upper()
        if name not in env:
            continue
        try:
            values[field_name] = parse(env[name])
        except ValueError as exc:
            raise ConfigError(f"environment variable {name}: {exc}") from None
    return values
