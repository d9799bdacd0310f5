"""The real loop (Prometheus -> Alertmanager -> Remediator) over several targets, each on
the engine a test names: the shared one, the second engine over TLS, a Swarm service, or an
engine that does not answer.

The shipped monitoring configs, with only addresses, intervals and the app-prod job's
scrape targets changed: one per app, labelled `service: <target name>`, `instance` left as
the scraped address (a Swarm replica's host-mode port is how its alert names it).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
import yaml

from devstack.stack import (
    MonitoringAuth,
    monitoring_auth,
    render_alertmanager_config,
    render_alerts,
    render_prometheus_config,
)
from tests.harness.docker_engine import ROOT
from tests.harness.processes import Proc, alertmanager, free_port, prometheus
from tests.harness.stack import FAST, TOKEN, remediator

__all__ = ["App", "Fleet", "fleet_loop"]


@dataclass(frozen=True)
class App:
    """One target: its name (also its alerts' `service` label), URL, and engine keys."""

    name: str
    url: str
    engine_yaml: str
    """The target's lines past name/selector/base_url, e.g. `container: x` and docker_host."""


@dataclass
class Fleet:
    apps: Sequence[App]
    remediator: Proc
    prometheus: Proc
    alertmanager: Proc

    def get(self, path: str) -> requests.Response:
        return requests.get(f"{self.remediator.url}{path}", timeout=15,
                            headers={"Authorization": f"Bearer {TOKEN}"})

    def api(self, path: str) -> Any:
        resp = self.get(path)
        resp.raise_for_status()
        return resp.json()

    def executions(self, target: str) -> list[dict[str, Any]]:
        items = self.api("/api/v1/executions?limit=200")["items"]
        return [e for e in items if e["target"] == target]

    def finished(self, target: str) -> dict[str, Any] | None:
        return next((e for e in self.executions(target) if e["state"] == "finished"), None)

    def alerts(self, name: str, service: str) -> list[dict[str, Any]]:
        data = requests.get(f"{self.prometheus.url}/api/v1/alerts", timeout=5).json()
        return [a for a in data["data"]["alerts"] if a["labels"].get("alertname") == name
                and a["labels"].get("service") == service]


def wait(predicate: Any, timeout: float, what: str, interval: float = 1.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def config_yaml(apps: Sequence[App], prom_url: str, am_url: str, auth: MonitoringAuth) -> str:
    targets = "".join(
        f"  - name: {app.name}\n    selector: {{service: {app.name}}}\n"
        f"    base_url: {app.url}\n    backup_path: /backup/models\n"
        f"    bounds: {{max_memory: 4g, min_cpus: 0.5, max_cpus: 2}}\n"
        + "".join(f"    {line}\n" for line in app.engine_yaml.strip().splitlines())
        for app in apps)
    return (f"mode: act\nprometheus_url: {prom_url}\nalertmanager_url: {am_url}\n"
            f"monitoring_password_file: {auth.password_file}\n"
            f"escalation_path: {ROOT / 'config/escalation.yml'}\n"
            f"max_runs_per_hour: 5\ntargets:\n{targets}")


def prometheus_yaml(apps: Sequence[App], addresses: dict[str, str],
                    auth: MonitoringAuth) -> str:
    config = yaml.safe_load(render_prometheus_config(
        (ROOT / "monitoring/prometheus.yml").read_text(), addresses, FAST, auth))
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "app-prod")
    shipped = job["static_configs"][0].get("labels") or {}
    job["static_configs"] = [{"targets": [app.url.removeprefix("http://")],
                              "labels": {**shipped, "service": app.name}} for app in apps]
    job.pop("relabel_configs", None)
    return str(yaml.safe_dump(config, sort_keys=False))


@contextlib.contextmanager
def fleet_loop(tmp: Path, apps: Sequence[App]) -> Iterator[Fleet]:
    rem_port, am_port, prom_port = free_port(), free_port(), free_port()
    auth = monitoring_auth(tmp)  # one password for both, as `make up` does
    config = tmp / "remediator.yml"
    config.write_text(config_yaml(apps, f"http://127.0.0.1:{prom_port}",
                                  f"http://127.0.0.1:{am_port}", auth))
    token_file = tmp / "token"
    token_file.write_text(TOKEN)
    am_config = render_alertmanager_config(
        (ROOT / "monitoring/alertmanager.yml").read_text(),
        f"http://127.0.0.1:{rem_port}/api/v1/alerts", str(token_file), FAST)
    addresses = {"alertmanager:9093": f"127.0.0.1:{am_port}",
                 "remediator:9096": f"127.0.0.1:{rem_port}"}
    rules = {"alerts.yml": render_alerts((ROOT / "monitoring/alerts.yml").read_text(), FAST)}
    with remediator(tmp, config, rem_port) as rem, \
            alertmanager(tmp, am_config, port=am_port, auth=auth) as am, \
            prometheus(tmp, prometheus_yaml(apps, addresses, auth), rules, port=prom_port,
                       auth=auth) as prom:
        yield Fleet(apps, rem, prom, am)
