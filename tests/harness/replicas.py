"""Several `remediator serve` replicas on one database, behind two Alertmanagers that are
not clustered with each other (as in a partition: each delivers every alert), with a real
Prometheus scraping a real app container: the loop of tests/harness/stack.py, replicated.

    with replicated_loop(tmp, resources, image, db_url, sink_url) as ha:
        ha.replicas[1].process   # a real subprocess (its own process group)
        ha.api("/api/v1/executions")

Each Alertmanager posts every alert to every replica's webhook, so one alert reaches the
store 2 x N times; Remediator must make one incident and one execution of them.
"""

from __future__ import annotations

import contextlib
import copy
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import docker.errors
import requests
import yaml

from devstack.stack import (
    Timings,
    monitoring_auth,
    render_alertmanager_config,
    render_alerts,
    render_prometheus_config,
)
from tests.harness.docker_engine import ROOT, Resources, host_port
from tests.harness.processes import (
    Proc,
    alertmanager,
    free_port,
    prometheus,
    spawn,
    stop,
    wait_ready,
)
from tests.harness.stack import FAST, TOKEN, Loop, remediator_config, requests_ok, start_app, wait

__all__ = ["Replicated", "docker_actions", "replica_argv", "replicated_loop", "webhook_config"]

SCRUBBED = ("SLACK_", "TEAMS_", "PAGERDUTY_", "ESCALATION_", "SMTP_", "REMEDIATOR_")
"""Variables that would send notifications somewhere real or change a replica's config."""


@dataclass
class Replicated:
    app_loop: Loop
    """The app, Prometheus and the first Alertmanager, with replica 0 as `remediator`."""
    replicas: list[Proc]
    alertmanagers: list[Proc]

    @property
    def app_url(self) -> str:
        return self.app_loop.app_url

    def api(self, path: str) -> Any:
        """GET ``path`` from the first replica that answers (any replica sees the store)."""
        last: Exception | None = None
        for replica in self.alive():
            try:
                resp = requests.get(f"{replica.url}{path}", timeout=10,
                                    headers={"Authorization": f"Bearer {TOKEN}"})
                resp.raise_for_status()
                return resp.json()
            except requests.RequestException as exc:
                last = exc
        raise AssertionError(f"no replica answered {path}: {last}")

    def alive(self) -> list[Proc]:
        return [r for r in self.replicas if r.process.poll() is None]

    def metric(self, replica: Proc, name: str) -> float:
        """Sum of every sample of ``name`` on one replica's /metrics (0 when absent)."""
        text = requests.get(f"{replica.url}/metrics", timeout=10).text
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith((f"{name}{{", f"{name} ")))

    def kill(self, replica: Proc) -> None:
        """SIGKILL the replica's whole process group (gunicorn master and worker)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(replica.process.pid, signal.SIGKILL)
        replica.process.wait(10)


def replica_argv(port: int, db_url: str, config: Path, playbooks: Path, replica_id: str,
                 role: str = "all") -> list[str]:
    """`remediator serve` for one replica: its own id and role, the shared database."""
    return [str(Path(sys.executable).parent / "remediator"), "serve", "--host", "127.0.0.1",
            "--port", str(port), "--db", db_url, "--config", str(config),
            "--playbooks", str(playbooks), "--replica-id", replica_id, "--role", role]


def clean_env(extra: Mapping[str, str]) -> dict[str, str]:
    """This process's environment without notification or Remediator settings, with the
    token, and ``extra`` over it."""
    kept = {key: value for key, value in os.environ.items() if not key.startswith(SCRUBBED)}
    return {**kept, "REMEDIATOR_WEBHOOK_TOKEN": TOKEN, **extra}


def webhook_config(shipped: str, urls: Sequence[str], token_file: Path,
                   timings: Timings) -> str:
    """The shipped alertmanager.yml rendered as for one Remediator, then its remediator
    receiver given one webhook per URL (each gets every notification)."""
    config = yaml.safe_load(render_alertmanager_config(shipped, urls[0], str(token_file),
                                                       timings))
    for receiver in config["receivers"]:
        hooks = receiver.get("webhook_configs") or []
        if hooks:
            receiver["webhook_configs"] = [{**copy.deepcopy(hooks[0]), "url": url}
                                          for url in urls]
    return str(yaml.safe_dump(config, sort_keys=False))


@contextlib.contextmanager
def serve_replicas(tmp: Path, config: Path, db_url: str, count: int,
                   env: Mapping[str, str], roles: Sequence[str] = ()) -> Iterator[list[Proc]]:
    """``count`` replicas (ids r1..rN) on ``db_url``, started together (migrations race
    as they would), each ready (/readyz); all stopped when the block ends."""
    procs: list[Proc] = []
    try:
        for n in range(count):
            workdir = tmp / f"replica-{n + 1}"
            workdir.mkdir()
            port = free_port()
            role = roles[n] if n < len(roles) else "all"
            argv = replica_argv(port, db_url, config, ROOT / "playbooks", f"r{n + 1}", role)
            procs.append(spawn(f"remediator-r{n + 1}", argv, port, workdir,
                               env=clean_env(env)))
        for proc in procs:
            wait_ready(proc, "/readyz", timeout=90)
        yield procs
    finally:
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                if proc.process.poll() is None:
                    os.killpg(proc.process.pid, signal.SIGTERM)
            stop(proc)


@contextlib.contextmanager
def replicated_loop(tmp: Path, resources: Resources, image: str, db_url: str, *,
                    count: int = 3, env: Mapping[str, str] | None = None,
                    timings: Timings = FAST) -> Iterator[Replicated]:
    """The app, ``count`` replicas on ``db_url`` (``env`` for them: the escalation sink,
    the database's password file), two unclustered Alertmanagers posting to every replica,
    and Prometheus alerting both."""
    app = start_app(resources, image)
    app_url = f"http://127.0.0.1:{host_port(app)}"
    wait(lambda: requests_ok(f"{app_url}/health"), 120, "the app to be healthy")
    am_ports, prom_port = [free_port(), free_port()], free_port()
    auth = monitoring_auth(tmp)
    config = remediator_config(tmp, app.name, app_url, f"http://127.0.0.1:{prom_port}",
                               alertmanager_url=f"http://127.0.0.1:{am_ports[0]}",
                               escalation_path=ROOT / "config" / "escalation.yml",
                               monitoring_password_file=auth.password_file)
    token_file = tmp / "token"
    token_file.write_text(TOKEN)
    shipped = (ROOT / "monitoring/alertmanager.yml").read_text()
    rules = {"alerts.yml": render_alerts((ROOT / "monitoring/alerts.yml").read_text(), timings)}
    try:
        with serve_replicas(tmp, config, db_url, count, env or {}) as procs:
            urls = [f"{proc.base}/api/v1/alerts" for proc in procs]
            am_config = webhook_config(shipped, urls, token_file, timings)
            addresses = {"app-prod:8080": app_url.removeprefix("http://"),
                         "alertmanager:9093": f"127.0.0.1:{am_ports[0]}",
                         "remediator:9096": f"127.0.0.1:{procs[0].port}"}
            prom = yaml.safe_load(render_prometheus_config(
                (ROOT / "monitoring/prometheus.yml").read_text(), addresses, timings, auth))
            for manager in prom["alerting"]["alertmanagers"]:  # both, as a pair is listed
                manager["static_configs"] = [{"targets": [f"127.0.0.1:{p}" for p in am_ports]}]
            with alertmanager(tmp, am_config, port=am_ports[0], auth=auth, name="am1") as am1, \
                    alertmanager(tmp, am_config, port=am_ports[1], auth=auth,
                                 name="am2") as am2, \
                    prometheus(tmp, yaml.safe_dump(prom, sort_keys=False), rules,
                               port=prom_port, auth=auth) as prom_proc:
                yield Replicated(Loop(app, app_url, procs[0], prom_proc, am1), procs,
                                 [am1, am2])
    finally:  # the container under that name now, recreated by a fix or not
        with contextlib.suppress(docker.errors.NotFound):
            resources.client.containers.get(str(app.name)).remove(force=True, v=True)


@contextlib.contextmanager
def docker_actions(client: docker.DockerClient, container: str) -> Iterator[list[str]]:
    """The Docker engine's own events for ``container`` (by name) while the block runs:
    their actions in order (`update`, `restart`, `exec_start: ...`), as `docker events
    --filter container=NAME` shows them. Streamed live: the engine keeps only its last 256
    events for a later `since` query, and other tests share it."""
    stream = client.events(decode=True, filters={"container": container, "type": "container"})
    actions: list[str] = []

    def record() -> None:
        with contextlib.suppress(Exception):  # the stream closed under it
            for event in stream:
                actions.append(str(event["Action"]))

    reader = threading.Thread(target=record, name="docker-events", daemon=True)
    reader.start()
    try:
        yield actions
    finally:
        time.sleep(1)  # the last events of the block reach the stream
        stream.close()
        reader.join(timeout=5)
