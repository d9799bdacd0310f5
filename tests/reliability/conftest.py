"""What the fault tests share: a real `remediator serve` built from their own config,
playbooks and environment; webhook payloads as Alertmanager sends them; sleeper containers.

    def test_x(serve: ServeFactory) -> None:
        rem = serve(CONFIG, {"p.yml": PLAYBOOK}, env={"ESCALATION_WEBHOOK_URL": sink.url})
        rem.post(webhook(alert(service="app-prod")))       # -> requests.Response
        rem.kill(); rem = rem.restart()                      # SIGKILL the process group

Every process started here runs in its own process group and is killed whole at teardown.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import docker
import docker.errors
import pytest
import requests
import yaml
from docker.models.containers import Container

from tests.harness.docker_engine import ROOT, Resources
from tests.harness.processes import Proc, free_port, wait_ready

TOKEN = "faults-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
POLICY = ROOT / "config" / "escalation.yml"
LOCAL_BASE_IMAGE = "remediator-base:bookworm"
"""The local base image (python3 + coreutils): enough for a sleeper, and it does not change
when the app does, so these tests need no image rebuild."""

# Variables that would send notifications somewhere real, or change Remediator's config.
_SCRUBBED = re.compile(r"^(REMEDIATOR_|SLACK_|TEAMS_|PAGERDUTY_|ESCALATION_|SMTP_)")


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def alert(alertname: str = "ModelLoadFailure", status: str = "firing",
          starts_at: datetime | None = None, **labels: str) -> dict[str, Any]:
    """One alert as Alertmanager's webhook carries it; the fingerprint follows the labels."""
    all_labels = {"alertname": alertname, "service": "app-prod",
                  "instance": "app-prod:8080", "severity": "critical", **labels}
    start = starts_at or datetime.now(UTC)
    canonical = json.dumps(sorted(all_labels.items())).encode()
    return {
        "status": status, "labels": all_labels,
        "annotations": {"summary": f"{alertname} on {all_labels['service']}"},
        "startsAt": iso(start),
        "endsAt": "0001-01-01T00:00:00Z" if status == "firing"
        else iso(max(start + timedelta(seconds=1), datetime.now(UTC))),
        "generatorURL": "http://prometheus/graph",
        "fingerprint": hashlib.sha256(canonical).hexdigest()[:16],
    }


def webhook(*alerts: dict[str, Any]) -> bytes:
    """A webhook v4 body holding ``alerts`` (one group)."""
    first = alerts[0]
    return json.dumps({
        "version": "4", "receiver": "remediator", "status": first["status"],
        "groupKey": f"{{}}:{{alertname={first['labels']['alertname']!r}}}",
        "groupLabels": {"alertname": first["labels"]["alertname"]},
        "commonLabels": {}, "commonAnnotations": {}, "externalURL": "http://alertmanager",
        "truncatedAlerts": 0, "alerts": list(alerts),
    }).encode()


def target_yaml(name: str, container: str, service: str | None = None) -> str:
    """One target block for remediator.yml (its alerts carry ``service=<service>``)."""
    return (f"  - name: {name}\n    selector: {{service: {service or name}}}\n"
            f"    container: {container}\n    base_url: http://127.0.0.1:1\n"
            f"    bounds: {{max_memory: 1g}}\n")


def config_yaml(targets: str, **settings: Any) -> str:
    """remediator.yml: the shipped escalation policy, no Alertmanager to reconcile with
    (nothing listens on port 1) unless a test names one, and ``targets``."""
    values = {"alertmanager_url": "http://127.0.0.1:1", "escalation_path": str(POLICY),
              **settings}
    lines = [f"{key}: {value}" for key, value in values.items()]
    return "\n".join(lines) + ("\ntargets:\n" + targets if targets else "\ntargets: []\n")


def wait_for(predicate: Callable[[], Any], timeout: float, what: str,
             interval: float = 0.1) -> Any:
    """The first truthy value of ``predicate``; fails naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


@dataclass
class Served:
    """One running `remediator serve` (a process group) and what it was started from."""

    proc: Proc
    workdir: Path
    argv: list[str]
    env: dict[str, str]
    started: list[Served] = field(repr=False, default_factory=list)

    @property
    def url(self) -> str:
        return self.proc.url

    @property
    def db(self) -> Path:
        return self.workdir / "remediator.db"

    def post(self, body: bytes, timeout: float = 10.0) -> requests.Response:
        return requests.post(f"{self.url}/api/v1/alerts", data=body, timeout=timeout,
                             headers={**AUTH, "Content-Type": "application/json"})

    def api(self, path: str) -> Any:
        resp = requests.get(f"{self.url}{path}", headers=AUTH, timeout=10)
        resp.raise_for_status()
        return resp.json()

    def items(self, kind: str, limit: int = 1000) -> list[dict[str, Any]]:
        """``/api/v1/<kind>`` items, oldest first."""
        return list(reversed(self.api(f"/api/v1/{kind}?limit={limit}")["items"]))

    def metric(self, name: str) -> float:
        """Sum of every sample of ``name`` on /metrics (0 when absent)."""
        text = requests.get(f"{self.url}/metrics", timeout=10).text
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if re.match(rf"{re.escape(name)}(\{{|\s)", line))

    def sql(self, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Read the store directly (WAL: safe beside the running server)."""
        with contextlib.closing(sqlite3.connect(self.db, timeout=10)) as db:
            return list(db.execute(query, params).fetchall())

    def alive(self) -> bool:
        return self.proc.process.poll() is None

    def kill(self) -> None:
        """SIGKILL the whole process group (gunicorn master and worker), as a crash."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.process.pid, signal.SIGKILL)
        self.proc.process.wait(10)

    def restart(self, ready: str = "/readyz") -> Served:
        """Start again on the same port, store and files (after kill())."""
        return _launch(self.workdir, self.argv, self.env, self.proc.port, ready, self.started)

    def log_tail(self, lines: int = 40) -> str:
        return self.proc.log_tail(lines)


class ServeFactory(Protocol):
    def __call__(self, config: str, playbooks: Mapping[str, str], *,
                 env: Mapping[str, str] | None = None, port: int | None = None,
                 ready: str = "/readyz", threads: int = 8) -> Served: ...


def _launch(workdir: Path, argv: list[str], env: dict[str, str], port: int, ready: str,
            started: list[Served]) -> Served:
    log = workdir / f"serve-{time.monotonic_ns()}.log"
    with log.open("wb") as handle:
        process = subprocess.Popen(argv, stdout=handle, stderr=subprocess.STDOUT,
                                   cwd=workdir, env=env, start_new_session=True)
    served = Served(Proc("remediator", port, process, log), workdir, argv, env, started)
    started.append(served)
    wait_ready(served.proc, ready, timeout=60)
    return served


@pytest.fixture
def serve(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[ServeFactory]:
    """Start `remediator serve` processes; all of them are killed at teardown."""
    started: list[Served] = []

    def start(config: str, playbooks: Mapping[str, str], *,
              env: Mapping[str, str] | None = None, port: int | None = None,
              ready: str = "/readyz", threads: int = 8) -> Served:
        if ready == "/readyz" and (yaml.safe_load(config) or {}).get("targets"):
            request.getfixturevalue("engine")  # a declared target makes /readyz want Docker
        workdir = tmp_path / f"remediator-{len(started)}"
        books = workdir / "playbooks"
        books.mkdir(parents=True)
        for name, text in playbooks.items():
            (books / name).write_text(text)
        (workdir / "remediator.yml").write_text(config)
        port = port or free_port()
        argv = [str(Path(sys.executable).parent / "remediator"), "serve", "--host",
                "127.0.0.1", "--port", str(port), "--db", str(workdir / "remediator.db"),
                "--config", str(workdir / "remediator.yml"), "--playbooks", str(books),
                "--threads", str(threads)]
        clean = {k: v for k, v in os.environ.items() if not _SCRUBBED.match(k)}
        full_env = {**clean, "REMEDIATOR_WEBHOOK_TOKEN": TOKEN, **(env or {})}
        return _launch(workdir, argv, full_env, port, ready, started)

    try:
        yield start
    finally:
        for served in started:
            if served.alive():
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(served.proc.process.pid, signal.SIGTERM)
                try:
                    served.proc.process.wait(10)
                except subprocess.TimeoutExpired:
                    served.kill()


@pytest.fixture(scope="session")
def sleeper_image(request: pytest.FixtureRequest, docker_client: docker.DockerClient) -> str:
    """An image with `sleep`: the local base when present, else the built app image."""
    with contextlib.suppress(docker.errors.ImageNotFound):
        docker_client.images.get(LOCAL_BASE_IMAGE)
        return LOCAL_BASE_IMAGE
    images: dict[str, str] = request.getfixturevalue("images")
    return images["modelserver"]


SleeperFactory = Callable[[], Container]


@pytest.fixture
def sleeper(docker_resources: Resources, sleeper_image: str) -> SleeperFactory:
    """Start a labelled container that only sleeps: a harmless target for playbooks."""

    def start() -> Container:
        return docker_resources.run(sleeper_image, ["sleep", "infinity"], init=True,
                                    mem_limit="64m", memswap_limit="64m")

    return start
