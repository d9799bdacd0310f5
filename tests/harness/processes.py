"""Real Prometheus and Alertmanager processes on free loopback ports, with basic auth as
`make up` runs them (a web config with a random password; the lifecycle API off).

    with prometheus(tmp_path, config_yaml, rules={"alerts.yml": text}) as prom:
        requests.get(prom.url + "/api/v1/query", params={"query": "up"})

``prom.url`` carries the credentials (http://user:password@127.0.0.1:port); ``prom.base``
does not; ``prom.auth`` is the MonitoringAuth (its password file, its web config).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import requests

from devstack.stack import MonitoringAuth, monitoring_auth


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Proc:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    auth: MonitoringAuth | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        if self.auth is None:
            return self.base
        return f"http://{self.auth.username}:{self.auth.password}@127.0.0.1:{self.port}"

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def require_binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"{name} is not installed: run `make host` (apt-get install "
                           f"prometheus prometheus-alertmanager)")
    return path


def wait_ready(proc: Proc, path: str = "/-/ready", timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.process.poll() is not None:
            raise RuntimeError(f"{proc.name} exited ({proc.process.returncode}):\n"
                               f"{proc.log_tail()}")
        with contextlib.suppress(requests.RequestException):
            if requests.get(proc.url + path, timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{proc.name} not ready after {timeout}s:\n{proc.log_tail()}")


def stop(proc: Proc) -> None:
    if proc.process.poll() is None:
        proc.process.send_signal(signal.SIGTERM)
        try:
            proc.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.process.kill()
            proc.process.wait()


def spawn(name: str, argv: list[str], port: int, workdir: Path,
          auth: MonitoringAuth | None = None, env: Mapping[str, str] | None = None) -> Proc:
    """Start ``argv`` in ``workdir``, logging to NAME.log there, with the environment
    ``env`` (default: this process's)."""
    log = workdir / f"{name}.log"
    handle = log.open("wb")
    # Its own process group, so a test can kill it whole, as a crash would (gunicorn's
    # worker outlives a SIGKILLed master otherwise).
    process = subprocess.Popen(argv, stdout=handle, stderr=subprocess.STDOUT, cwd=workdir,
                               env=dict(os.environ if env is None else env),
                               start_new_session=True)
    handle.close()
    return Proc(name, port, process, log, auth)


@contextlib.contextmanager
def prometheus(workdir: Path, config: str, rules: dict[str, str] | None = None,
               port: int | None = None, auth: MonitoringAuth | None = None) -> Iterator[Proc]:
    """Start Prometheus with ``config`` (rule files named in it are written beside it),
    behind basic auth (``auth``, else a fresh random password in its folder)."""
    binary = require_binary("prometheus")
    workdir = workdir / "prometheus"
    workdir.mkdir(parents=True, exist_ok=True)
    for filename, text in (rules or {}).items():
        (workdir / filename).write_text(text)
    (workdir / "prometheus.yml").write_text(config)
    port = port or free_port()
    auth = auth or monitoring_auth(workdir)
    proc = spawn("prometheus", [
        binary, f"--config.file={workdir / 'prometheus.yml'}",
        f"--storage.tsdb.path={workdir / 'data'}", f"--web.listen-address=127.0.0.1:{port}",
        f"--web.config.file={auth.web_config}", "--log.level=warn",
    ], port, workdir, auth)
    try:
        wait_ready(proc)
        yield proc
    finally:
        stop(proc)


@contextlib.contextmanager
def alertmanager(workdir: Path, config: str, port: int | None = None,
                 cluster_port: int | None = None, peers: list[str] | None = None,
                 name: str = "alertmanager",
                 auth: MonitoringAuth | None = None) -> Iterator[Proc]:
    """Start Alertmanager behind basic auth (``auth``, else a fresh random password in its
    folder); clustering is off unless ``cluster_port`` is given."""
    binary = require_binary("prometheus-alertmanager")
    workdir = workdir / name
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "alertmanager.yml").write_text(config)
    port = port or free_port()
    cluster = (f"--cluster.listen-address=127.0.0.1:{cluster_port}" if cluster_port
               else "--cluster.listen-address=")
    auth = auth or monitoring_auth(workdir)
    argv = [binary, f"--config.file={workdir / 'alertmanager.yml'}",
            f"--storage.path={workdir / 'data'}", f"--web.listen-address=127.0.0.1:{port}",
            f"--web.config.file={auth.web_config}", cluster, "--log.level=warn"]
    argv += [f"--cluster.peer={peer}" for peer in peers or []]
    proc = spawn(name, argv, port, workdir, auth)
    try:
        wait_ready(proc)
        yield proc
    finally:
        stop(proc)
