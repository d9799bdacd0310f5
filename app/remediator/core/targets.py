"""Targets: the containers Remediator may touch, and which alerts they answer to.

A target is declared in config/remediator.yml; alerts find it by label selector, the most
specific selector (most labels) winning, so `{instance: "app-prod-2:8080", service: app-prod}`
beats `{service: app-prod}` for that one replica. Bounds say how far a playbook may move the
container's resources: the core refuses a `docker.update` beyond them before any adapter runs.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from remediator.core.defaults import DEFAULT_WRITE_PATHS
from remediator.core.engines import TlsFiles
from remediator.core.units import format_size

__all__ = ["TARGET_CONTEXT_KEYS", "Target", "check_bounds", "check_write_path", "match_target",
           "selector_matches"]


@dataclass(frozen=True)
class Target:
    """A container Remediator may act on. Sizes in bytes, CPUs as a fraction of cores."""

    name: str
    selector: dict[str, str]
    container: str
    base_url: str
    backup_path: str | None = None
    max_memory: int | None = None
    cpu_min: float | None = None
    cpu_max: float | None = None
    description: str = ""
    config_files: tuple[str, ...] = ()
    """Files inside the container recorded with the last-known-good (e.g. model.yml)."""
    write_paths: tuple[str, ...] = ()
    """Folders inside the container under which Remediator may write, chown or chmod; empty:
    the default (see write_prefixes)."""
    docker_host: str | None = None
    """The engine it runs on (unix:// or tcp://); None: the one DOCKER_HOST names."""
    tls: TlsFiles | None = None
    swarm_service: str | None = None
    """A Swarm service: the alert's `instance` label picks the replica (task) acted on."""
    instance: str | None = None
    """The alerting replica's `instance` label, for a Swarm service (set by for_alert)."""

    def for_alert(self, labels: Mapping[str, str]) -> Target:
        """This target as one alert sees it: a Swarm service learns which replica fired."""
        if self.swarm_service is None:
            return self
        return replace(self, instance=labels.get("instance") or None)

    @property
    def engine(self) -> str:
        """How messages name its engine."""
        return self.docker_host or "the default Docker engine (DOCKER_HOST)"

    def write_prefixes(self) -> tuple[str, ...]:
        """Where writes may go: the declared write_paths, else DEFAULT_WRITE_PATHS plus the
        backup_path and the folders of the config_files. Nothing else, whatever a playbook or
        the container's own output says."""
        if self.write_paths:
            return tuple(posixpath.normpath(p) for p in self.write_paths)
        derived = [*DEFAULT_WRITE_PATHS, *([self.backup_path] if self.backup_path else []),
                   *(posixpath.dirname(f) for f in self.config_files)]
        return tuple(dict.fromkeys(posixpath.normpath(p) for p in derived if p))

    def context(self) -> dict[str, Any]:
        """The `target` variable templates see."""
        return {
            "name": self.name,
            "container": self.container,
            "base_url": self.base_url,
            "backup_path": self.backup_path,
            "max_memory": self.max_memory,
            "cpu_min": self.cpu_min,
            "cpu_max": self.cpu_max,
            "selector": dict(self.selector),
            "config_files": list(self.config_files),
            "docker_host": self.docker_host,
            "swarm_service": self.swarm_service,
        }


TARGET_CONTEXT_KEYS = frozenset(
    {"name", "container", "base_url", "backup_path", "max_memory", "cpu_min", "cpu_max",
     "selector", "config_files", "docker_host", "swarm_service"}
)
"""Fields a template may read from `target` (checked by `remediator validate`)."""


def selector_matches(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    """True when every selector label is present in `labels` with the same value."""
    return all(labels.get(name) == value for name, value in selector.items())


def match_target(targets: Sequence[Target], labels: Mapping[str, str]) -> Target | None:
    """The target whose selector matches with the most labels; ties go to the first declared.

    None means no declared target matches: the caller records the alert and does nothing.
    """
    best: Target | None = None
    for target in targets:
        if not target.selector or not selector_matches(target.selector, labels):
            continue
        if best is None or len(target.selector) > len(best.selector):
            best = target
    return best


def check_bounds(
    target: Target,
    memory: int | None = None,
    memory_swap: int | None = None,
    cpus: float | None = None,
) -> list[tuple[str, str]]:
    """(argument, message) for every requested resource outside the target's bounds.

    A target that declares no bound for a resource cannot have it changed at all: an
    unbounded knob is how a loop of fixes eats a host.
    """
    problems: list[tuple[str, str]] = []
    if memory is not None:
        problems += _check_memory(target, "memory", memory)
    if memory_swap is not None:
        problems += _check_swap(target, memory, memory_swap)
    if cpus is not None:
        problems += _check_cpus(target, cpus)
    return problems


def _check_memory(target: Target, arg: str, value: int) -> list[tuple[str, str]]:
    if target.max_memory is None:
        return [(arg, f"target {target.name!r} declares no max_memory, so it cannot be changed")]
    if value > target.max_memory:
        return [(arg, f"{format_size(value)} exceeds the max_memory "
                      f"{format_size(target.max_memory)} of target {target.name!r}")]
    return []


def _check_swap(target: Target, memory: int | None, swap: int) -> list[tuple[str, str]]:
    # max_memory caps memory plus swap, and a target without it cannot be changed at all:
    # unlimited swap (-1) is never a fix Remediator makes.
    if swap == -1:
        return [("memory_swap", "-1 (unlimited swap) is refused: the target's max_memory caps "
                                "memory plus swap; give a size up to it")]
    if memory is not None and swap < memory:
        return [("memory_swap", "must be at least memory (it counts memory plus swap)")]
    return _check_memory(target, "memory_swap", swap)


def _check_cpus(target: Target, cpus: float) -> list[tuple[str, str]]:
    if target.cpu_min is None or target.cpu_max is None:
        return [("cpus", f"target {target.name!r} declares no CPU range, so it cannot be changed")]
    if not target.cpu_min <= cpus <= target.cpu_max:
        return [("cpus", f"{cpus:g} is outside the range {target.cpu_min:g}..{target.cpu_max:g} "
                         f"of target {target.name!r}")]
    return []


def check_write_path(target: Target, path: str) -> str | None:
    """Why ``path`` may not be written in ``target`` (None: it may): it must be absolute,
    without ``..`` or NUL, and under one of the target's write prefixes."""
    if not path.startswith("/") or "\x00" in path or ".." in path.split("/"):
        return f"{path!r} is not an absolute path without '..'"
    clean = posixpath.normpath(path)
    prefixes = target.write_prefixes()
    if any(clean == p or clean.startswith(p.rstrip("/") + "/") for p in prefixes):
        return None
    return (f"{clean} is outside the paths target {target.name!r} allows writes under "
            f"({', '.join(prefixes)}); declare it in the target's write_paths "
            "(config/remediator.yml) if it should be")
