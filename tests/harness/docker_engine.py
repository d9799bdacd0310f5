"""A real Docker engine for the tests: reach it (or start it), build images, clean up.

Everything the harness creates carries the label ``LABEL=<session id>`` and is removed at
the end, even when a test fails. Ports are published on 127.0.0.1 only. Nothing is pulled.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest
from docker.models.containers import Container

ROOT = Path(__file__).resolve().parents[2]
LABEL = "org.remediator.test"
SESSION_ID = uuid.uuid4().hex[:10]
MODELSERVER_IMAGE = "mobile-multimodal:latest"
REMEDIATOR_IMAGE = "remediator:latest"


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def unavailable(reason: str) -> None:
    """Skip on a laptop without Docker; fail under CI=true, where a skip would hide a gap."""
    if in_ci():
        pytest.fail(f"Docker is required under CI=true: {reason}", pytrace=False)
    pytest.skip(f"Docker unavailable: {reason}")


@dataclass
class Engine:
    client: docker.DockerClient
    pidfile: Path | None = None  # set when the harness started dockerd itself


def connect() -> docker.DockerClient:
    client = docker.from_env(timeout=120)
    client.ping()
    return client


def start_engine(tmp: Path) -> Engine:
    try:
        return Engine(connect())
    except docker.errors.DockerException as exc:
        first_error = exc
    if os.geteuid() != 0:
        unavailable(f"engine not reachable ({first_error}) and not root to start dockerd")
    pidfile = tmp / "dockerd.pid"
    proc = subprocess.run(
        ["bash", str(ROOT / "scripts" / "dockerd.sh"), "start", str(pidfile)],
        capture_output=True, text=True,
    )
    if proc.returncode != 0:
        unavailable(f"engine not reachable ({first_error}); starting dockerd failed: "
                    f"{proc.stderr.strip()}")
    try:
        return Engine(connect(), pidfile if pidfile.exists() else None)
    except docker.errors.DockerException as exc:
        unavailable(f"dockerd started but the SDK cannot reach it: {exc}")
        raise


def stop_engine(engine: Engine) -> list[str]:
    """Remove what this session labelled; returns what could not be removed."""
    remove_labelled(engine.client)
    selector = {"label": f"{LABEL}={SESSION_ID}"}
    left = [f"container {c.name}" for c in engine.client.containers.list(all=True,
                                                                          filters=selector)]
    left += [f"volume {v.name}" for v in engine.client.volumes.list(filters=selector)]
    engine.client.close()
    if engine.pidfile is not None:
        subprocess.run(["bash", str(ROOT / "scripts" / "dockerd.sh"), "stop",
                        str(engine.pidfile)], check=False)
    return left


def build_images() -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "build_images.py")],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.fail(f"make images failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}",
                    pytrace=False)


def remove_labelled(client: docker.DockerClient, session: str = SESSION_ID) -> None:
    selector = {"label": f"{LABEL}={session}"}
    for container in client.containers.list(all=True, filters=selector):
        with contextlib.suppress(docker.errors.NotFound):
            container.remove(force=True, v=True)
    for network in client.networks.list(filters=selector):
        network.remove()
    for volume in client.volumes.list(filters=selector):
        with contextlib.suppress(docker.errors.NotFound):
            volume.remove(force=True)


def loopback_ports(ports: dict[str, Any] | None) -> dict[str, Any] | None:
    """Publish every port on 127.0.0.1 only (a free host port unless one is given)."""
    if ports is None:
        return None
    out: dict[str, Any] = {}
    for container_port, host in ports.items():
        if isinstance(host, tuple):
            if host[0] != "127.0.0.1":
                raise ValueError(f"port {container_port}: tests publish on 127.0.0.1 only")
            out[container_port] = host
        else:
            out[container_port] = ("127.0.0.1", host)
    return out


@dataclass
class Resources:
    """Factory for labelled containers, volumes and networks; removes them at teardown."""

    client: docker.DockerClient
    containers: list[Container] = field(default_factory=list)

    def labels(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        return {LABEL: SESSION_ID, **(extra or {})}

    def run(self, image: str, command: Any = None, **kwargs: Any) -> Container:
        kwargs["labels"] = self.labels(kwargs.get("labels"))
        kwargs["ports"] = loopback_ports(kwargs.get("ports"))
        kwargs.setdefault("name", f"rt-{SESSION_ID}-{uuid.uuid4().hex[:6]}")
        container = self.client.containers.run(image, command, detach=True, **kwargs)
        self.containers.append(container)
        return container

    def volume(self, name: str | None = None) -> Any:
        return self.client.volumes.create(
            name=name or f"rt-{SESSION_ID}-{uuid.uuid4().hex[:6]}", labels=self.labels())

    def network(self, name: str | None = None) -> Any:
        return self.client.networks.create(
            name or f"rt-{SESSION_ID}-{uuid.uuid4().hex[:6]}", labels=self.labels())

    def cleanup(self) -> None:
        for container in self.containers:
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True, v=True)


def host_port(container: Container, port: str = "8080/tcp") -> int:
    container.reload()
    bindings = container.attrs["NetworkSettings"]["Ports"][port]
    return int(bindings[0]["HostPort"])


def resources(client: docker.DockerClient) -> Iterator[Resources]:
    res = Resources(client)
    try:
        yield res
    finally:
        res.cleanup()
