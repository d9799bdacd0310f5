"""Runbook faults for tests: inject one from outside a running app container, then wait
until it shows from outside, as Prometheus would see it before its rule fires.

The injectors are `devstack.demo.FAULTS` (what `make demo SCENARIO=...` runs), so the
tests break the app exactly as the demo does.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

import docker
import docker.errors
import requests

from devstack.demo import FAULTS, SCENARIO_OF, inject_fault

__all__ = ["FAULTS", "SCENARIO_OF", "inject", "wait_for_fault"]

SHOWS: dict[str, str] = {
    "slow-load": "loading", "memory-growth": "memory", "oom": "oom_killed",
}
"""How a fault shows from outside, when not as a failed or degraded model (the default)."""


def _model_health(app_url: str) -> dict[str, Any] | None:
    with contextlib.suppress(requests.RequestException, ValueError):
        body = requests.get(f"{app_url}/model/health", timeout=2).json()
        return body if isinstance(body, dict) else None
    return None


def _oom_killed(client: docker.DockerClient, name: str) -> bool:
    with contextlib.suppress(docker.errors.NotFound):
        return bool(client.containers.get(name).attrs["State"].get("OOMKilled"))
    return False


def wait_for_fault(client: docker.DockerClient, name: str, app_url: str, fault: str,
                   timeout: float = 120.0) -> dict[str, Any]:
    """Wait until `fault` is visible: the model failed or degraded, the container
    OOM-killed, a load in progress, or memory near the limit. Returns what was seen."""
    how = SHOWS.get(fault, "failed")
    checks: dict[str, Callable[[dict[str, Any]], bool]] = {
        "failed": lambda mh: mh.get("state") in ("DEGRADED", "FAILED") and not mh["loading"],
        "loading": lambda mh: bool(mh.get("loading")),
        "memory": lambda mh: mh.get("memory_usage_mb", 0) >= 0.8 * _limit_mb(client, name),
        "oom_killed": lambda mh: _oom_killed(client, name),
    }
    deadline = time.monotonic() + timeout
    seen: dict[str, Any] | None = None
    while time.monotonic() < deadline:
        seen = _model_health(app_url)
        if checks[how](seen or {}):
            return seen or {"oom_killed": True}
        time.sleep(0.1)
    raise AssertionError(f"fault {fault!r} did not show within {timeout:.0f}s: last "
                         f"/model/health {seen}")


def _limit_mb(client: docker.DockerClient, name: str) -> float:
    limit = client.containers.get(name).attrs["HostConfig"].get("Memory") or 0
    return limit / 2**20 if limit else float("inf")


def inject(client: docker.DockerClient, name: str, app_url: str, fault: str) -> float:
    """Inject `fault` into container `name`; wait until it shows. Returns the wall-clock
    time of the injection (the alert's startsAt)."""
    started = inject_fault(client, name, fault)
    wait_for_fault(client, name, app_url, fault)
    return started
