"""The whole loop for end-to-end tests: app container, Remediator, Alertmanager, Prometheus.

Uses the shipped monitoring configs with only intervals, `for:`, addresses and ports
changed (devstack.stack renders them), and a test-named container as the target.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import docker.errors
import requests
from docker.models.containers import Container

from devstack.stack import (
    AppSpec,
    Timings,
    app_container_kwargs,
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

FAST = Timings(scrape_interval="1s", evaluation_interval="1s", alert_for="5s",
               group_wait="1s", group_interval="2s", repeat_interval="1h")
"""Short intervals so the loop closes in seconds, not minutes."""

TOKEN = "e2e-token"



def load_stack_script() -> ModuleType:
    """scripts/stack.py (`make up`/`down`/`demo`) as a module, to call its own functions."""
    spec = importlib.util.spec_from_file_location("stack_script", ROOT / "scripts/stack.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module

@dataclass
class Loop:
    app: Container
    app_url: str
    remediator: Proc
    prometheus: Proc
    alertmanager: Proc

    def api(self, path: str, method: str = "GET") -> Any:
        resp = requests.request(method, f"{self.remediator.url}{path}", timeout=5,
                                headers={"Authorization": f"Bearer {TOKEN}"})
        resp.raise_for_status()
        return resp.json()

    def health(self, timeout: float = 2) -> dict[str, Any]:
        with contextlib.suppress(requests.RequestException, ValueError):
            return dict(requests.get(f"{self.app_url}/health", timeout=timeout).json())
        return {}

    def alerts(self, name: str) -> list[dict[str, Any]]:
        data = requests.get(f"{self.prometheus.url}/api/v1/alerts", timeout=5).json()
        return [a for a in data["data"]["alerts"] if a["labels"].get("alertname") == name]


def wait(predicate: Any, timeout: float, what: str, interval: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def start_app(resources: Resources, image: str) -> Container:
    # A name of its own per app: a fix that recreates the container (scenario 3's force_cpu)
    # leaves one this test's cleanup does not hold, and the next test must not collide.
    suffix = uuid.uuid4().hex[:6]
    spec = AppSpec(name=f"e2e-app-{resources.labels()['org.remediator.test']}-{suffix}",
                   image=image,
                   port=free_port(), models_volume=resources.volume().name,
                   backup_volume=resources.volume().name)
    kwargs = app_container_kwargs(spec, resources.labels())
    box = resources.client.containers.run(**kwargs)
    resources.containers.append(box)
    return box


def remediator_config(tmp: Path, container: str, app_url: str, prom_url: str, *,
                      alertmanager_url: str | None = None, escalation_path: Path | None = None,
                      config_files: list[str] | None = None,
                      monitoring_password_file: Path | None = None) -> Path:
    """config/remediator.yml for one app-prod target; the optional keys only when given."""
    top = "".join(f"{key}: {value}\n" for key, value in (
        ("alertmanager_url", alertmanager_url), ("escalation_path", escalation_path),
        ("monitoring_password_file", monitoring_password_file))
        if value is not None)
    files = f"    config_files: [{', '.join(config_files)}]\n" if config_files else ""
    path = tmp / "remediator.yml"
    path.write_text(f"""
mode: act
prometheus_url: {prom_url}
{top}max_runs_per_hour: 5
targets:
  - name: app-prod
    selector: {{service: app-prod}}
    container: {container}
    base_url: {app_url}
    backup_path: /backup/models
{files}    bounds: {{max_memory: 4g, min_cpus: 0.5, max_cpus: 2}}
""")
    return path


@contextlib.contextmanager
def serve_remediator(workdir: Path, config: Path, db: Path, port: int) -> Iterator[Proc]:
    """`remediator serve` with the shipped playbooks, ready (/readyz) until the block ends."""
    argv = [str(Path(sys.executable).parent / "remediator"), "serve", "--host", "127.0.0.1",
            "--port", str(port), "--db", str(db), "--config", str(config),
            "--playbooks", str(ROOT / "playbooks")]
    proc = spawn("remediator", argv, port, workdir)
    try:
        wait_ready(proc, "/readyz", timeout=60)
        yield proc
    finally:
        stop(proc)


@contextlib.contextmanager
def remediator(tmp: Path, config: Path, port: int) -> Iterator[Proc]:
    workdir = tmp / "remediator"
    workdir.mkdir()
    os.environ["REMEDIATOR_WEBHOOK_TOKEN"] = TOKEN
    with serve_remediator(workdir, config, workdir / "remediator.db", port) as proc:
        yield proc


@contextlib.contextmanager
def loop(tmp: Path, resources: Resources, image: str, timings: Timings = FAST) -> Iterator[Loop]:
    app = start_app(resources, image)
    app_url = f"http://127.0.0.1:{host_port(app)}"
    wait(lambda: requests_ok(f"{app_url}/health"), 120, "the app to be healthy")
    rem_port, am_port, prom_port = free_port(), free_port(), free_port()
    auth = monitoring_auth(tmp)  # one password for both, as `make up` does
    config = remediator_config(tmp, app.name, app_url, f"http://127.0.0.1:{prom_port}",
                               alertmanager_url=f"http://127.0.0.1:{am_port}",
                               monitoring_password_file=auth.password_file)
    token_file = tmp / "token"
    token_file.write_text(TOKEN)
    am_config = render_alertmanager_config(
        (ROOT / "monitoring/alertmanager.yml").read_text(),
        f"http://127.0.0.1:{rem_port}/api/v1/alerts", str(token_file), timings)
    addresses = {"app-prod:8080": app_url.removeprefix("http://"),
                 "alertmanager:9093": f"127.0.0.1:{am_port}",
                 "remediator:9096": f"127.0.0.1:{rem_port}"}
    prom_config = render_prometheus_config((ROOT / "monitoring/prometheus.yml").read_text(),
                                           addresses, timings, auth)
    rules = {"alerts.yml": render_alerts((ROOT / "monitoring/alerts.yml").read_text(), timings)}
    try:
        with remediator(tmp, config, rem_port) as rem, \
                alertmanager(tmp, am_config, port=am_port, auth=auth) as am, \
                prometheus(tmp, prom_config, rules, port=prom_port, auth=auth) as prom:
            yield Loop(app, app_url, rem, prom, am)
    finally:  # the container under that name now, recreated by a fix or not
        with contextlib.suppress(docker.errors.NotFound):
            resources.client.containers.get(str(app.name)).remove(force=True, v=True)


def requests_ok(url: str) -> bool:
    with contextlib.suppress(requests.RequestException, ValueError):
        return bool(requests.get(url, timeout=2).json().get("status") == "healthy")
    return False
