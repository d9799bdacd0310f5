"""A one-node Swarm on the second (private) engine, and the app as a Swarm service.

`docker swarm init --advertise-addr 127.0.0.1` on the second dockerd only: the shared
engine other tests use never joins a swarm. Services publish with mode=host (the ingress
routing mesh needs what this machine lacks); their volumes start from the image's files,
as app-prod's do. `leave` at the end.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

from tests.harness.docker_engine import LABEL, SESSION_ID
from tests.harness.processes import free_port
from tests.harness.second_engine import SecondEngine

__all__ = [
    "ADDRESS_POOL",
    "create_app_service",
    "init_swarm",
    "leave_swarm",
    "remove_service",
    "running_task",
]

ADDRESS_POOL = "10.214.0.0/16"
"""Overlay networks of this swarm (ingress): off the first engine's pools."""

HEALTH_CMD = ("python -c \"import urllib.request as u; "
              "u.urlopen('http://127.0.0.1:8080/v2/health/live', timeout=5)\"")
"""Liveness, not model health: Swarm replaces an unhealthy task by a fresh container from
the spec, which cures no model fault (the volume keeps it) and would race Remediator's
repair. Light too (no torch import every few seconds on a 2-core machine)."""


def init_swarm(engine: SecondEngine) -> None:
    engine.cli("swarm", "init", "--advertise-addr", "127.0.0.1",
               "--listen-addr", f"127.0.0.1:{free_port()}",
               "--default-addr-pool", ADDRESS_POOL)


def leave_swarm(engine: SecondEngine) -> None:
    with contextlib.suppress(RuntimeError):
        engine.cli("swarm", "leave", "--force")


def create_app_service(engine: SecondEngine, name: str, image: str, port: int) -> None:
    """The app as a one-replica service, published on `port` in host mode."""
    engine.cli("service", "create", "--detach", "--name", name,
               "--label", f"{LABEL}={SESSION_ID}",
               "--publish", f"mode=host,published={port},target=8080",
               "--mount", f"type=volume,source={name}-models,target=/app/models",
               "--mount", f"type=volume,source={name}-backup,target=/backup/models",
               "--limit-memory", "3g", "--health-cmd", HEALTH_CMD,
               "--health-interval", "5s", "--health-timeout", "5s", "--health-retries", "3",
               "--health-start-period", "120s", image)


def remove_service(engine: SecondEngine, name: str) -> None:
    with contextlib.suppress(RuntimeError):
        engine.cli("service", "rm", name)


def running_task(engine: SecondEngine, name: str, timeout: float = 120) -> dict[str, Any]:
    """The service's running task: {id, slot, container}."""
    client = engine.client()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            for task in client.api.tasks(filters={"service": name,
                                                  "desired-state": "running"}):
                status = task.get("Status") or {}
                if status.get("State") == "running":
                    return {"id": task["ID"], "slot": task["Slot"],
                            "container": status["ContainerStatus"]["ContainerID"]}
            time.sleep(0.5)
    finally:
        client.close()
    raise AssertionError(f"no running task of service {name} after {timeout:.0f}s")
