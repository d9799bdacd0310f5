"""One runbook scenario against real containers: a healthy app, `remediator serve`, sinks.

    with scenario_rig(tmp_path, docker_resources, images["modelserver"], "permissions",
                      monkeypatch) as rig:
        fault_at = rig.inject("permissions")            # from outside; waits until it shows
        rig.post_alert(alert_payload("load-failure", fault_at))
        execution = rig.wait_execution()                # through the API only

The app container has app-prod's shape (devstack.stack.app_container_kwargs: restart
policy, healthcheck, 3g memory limit, models and backup volumes) under its own name, and is
declared as the target of `service: app-prod` in the rig's config. Remediator runs with the
shipped playbooks and config/escalation.yml; Slack and PagerDuty are stand-ins on loopback
(SLACK_WEBHOOK_URL, PAGERDUTY_EVENTS_URL and PAGERDUTY_ROUTING_KEY, the variables the
policy reads); no other channel is configured.

The last-known-good is seeded before `remediator serve` starts: the healthy container's
image id, environment and /app/config/model.yml, read through the same snapshot the service
takes when an incident closes (`last_known_good_snapshot`) and written with
`Store(db).record_last_known_good(...)`, as if an earlier incident had closed.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest
import requests
from docker.models.containers import Container

from devstack.stack import AppSpec, app_container_kwargs, record_known_good
from remediator.core.config import load_config
from tests.harness.docker_engine import LABEL, ROOT, SESSION_ID, Resources
from tests.harness.faults import inject
from tests.harness.processes import Proc, free_port
from tests.harness.stack import remediator_config, serve_remediator
from tests.support import HttpSink, PagerDutySink
from tests.support.escalation_kit import ROUTING_KEY
from tests.support.fixtures import ALERTMANAGER

__all__ = ["RUNBOOK_HEALTHY", "Rig", "alert_payload", "scenario_rig"]

FIXTURES = ALERTMANAGER
TOKEN = "scenario-token"
RUNBOOK_HEALTHY = {"status": "healthy", "model_loaded": True}
RUNBOOK_PNG = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6"
               "kgAAAABJRU5ErkJggg==")
CHANNEL_ENV = ("SLACK_WEBHOOK_URL", "TEAMS_WEBHOOK_URL", "ESCALATION_WEBHOOK_URL", "SMTP_HOST",
               "SMTP_FROM", "SMTP_TO", "PAGERDUTY_ROUTING_KEY", "PAGERDUTY_EVENTS_URL")


def iso(moment: float) -> str:
    """A unix time as Alertmanager writes startsAt."""
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


def alert_payload(kind: str, starts_at: float) -> bytes:
    """The captured fixture for `kind` with startsAt set; `load-time` is built like it.

    load-failure: firing-model-load-failure.json as it is. memory: the app-prod alert of
    firing-model-memory-usage-grouped.json (its replica's alert would need a second target).
    load-time: the ModelLoadFailure fixture relabelled as alerts.yml's ModelLoadTime fires.
    """
    name = ("firing-model-memory-usage-grouped.json" if kind == "memory"
            else "firing-model-load-failure.json")
    body = json.loads((FIXTURES / name).read_text())
    body["alerts"] = [a for a in body["alerts"] if a["labels"]["instance"] == "app-prod:8080"]
    if kind == "load-time":
        (alert,) = body["alerts"]
        alert["labels"].update(alertname="ModelLoadTime", severity="warning")
        alert["annotations"] = {"summary": "Model taking too long to load",
                                "description": "Model load time is 61s, exceeding 60s "
                                               "threshold."}
        alert["fingerprint"] = "6d1c0a3b2f7e9a41"
        body["groupLabels"]["alertname"] = body["commonLabels"]["alertname"] = "ModelLoadTime"
        body["commonLabels"]["severity"] = "warning"
        body["commonAnnotations"] = alert["annotations"]
        body["groupKey"] = '{}:{alertname="ModelLoadTime", service="app-prod"}'
    for alert in body["alerts"]:
        alert["startsAt"] = iso(starts_at)
    return json.dumps(body).encode()


@dataclass
class Rig:
    """The running scenario: the app (by name: a fix may recreate it), Remediator, sinks."""

    client: docker.DockerClient
    app_name: str
    app_url: str
    remediator: Proc
    pagerduty: PagerDutySink
    slack: HttpSink
    received_at: float = 0.0
    config: Path | None = None
    """The rig's config/remediator.yml and Remediator's store (to record a last-known-good)."""
    db: Path | None = None

    @property
    def app(self) -> Container:
        return self.client.containers.get(self.app_name)

    # -- the app, from outside ---------------------------------------------------------------
    def inject(self, fault: str) -> float:
        return inject(self.client, self.app_name, self.app_url, fault)

    def get(self, path: str) -> tuple[int, Any]:
        resp = requests.get(f"{self.app_url}{path}", timeout=5)
        return resp.status_code, resp.json()

    def inference(self) -> tuple[int, Any]:
        resp = requests.post(f"{self.app_url}/model/inference", timeout=15,
                             json={"image": RUNBOOK_PNG, "task": "captioning"})
        return resp.status_code, resp.json()

    def assert_healthy_on_the_primary_model(self) -> None:
        """The runbook's validation, checked again by the test itself."""
        assert self.get("/health") == (200, RUNBOOK_HEALTHY)
        _, model = self.get("/model/health")
        assert (model["state"], model["model_type"], model["fallback_active"]) == (
            "READY", "primary", False), model
        status, answer = self.inference()
        assert status == 200 and answer["caption"], answer
        metrics = requests.get(f"{self.app_url}/metrics", timeout=5).text
        assert "model_loaded 1.0" in metrics and "model_fallback_active 0.0" in metrics

    # -- Remediator, through its API -------------------------------------------------------
    def api(self, path: str) -> Any:
        resp = requests.get(f"{self.remediator.url}{path}", timeout=5,
                            headers={"Authorization": f"Bearer {TOKEN}"})
        assert resp.status_code == 200, (resp.status_code, resp.text)
        return resp.json()

    def post_alert(self, body: bytes) -> float:
        """POST the webhook as Alertmanager does; returns the wall-clock time of its 202."""
        resp = requests.post(f"{self.remediator.url}/api/v1/alerts", data=body, timeout=5,
                             headers={"Authorization": f"Bearer {TOKEN}",
                                      "Content-Type": "application/json"})
        assert resp.status_code == 202, (resp.status_code, resp.text)
        self.received_at = time.time()
        return self.received_at

    def wait_execution(self, timeout: float = 180.0, after: int = 0) -> dict[str, Any]:
        """The execution the alert started (the newest, with an id above `after`), once
        finished (polled every 50 ms)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            items = self.api("/api/v1/executions")["items"]
            if items and items[0]["id"] > after and items[0]["state"] == "finished":
                return dict(self.api(f"/api/v1/executions/{items[0]['id']}"))
            time.sleep(0.05)
        raise AssertionError(f"no finished execution after {timeout:.0f}s; executions "
                             f"{self.api('/api/v1/executions')}\n{self.remediator.log_tail(40)}")

    def notifications(self, settle: float = 1.5, timeout: float = 30.0,
                      until: Callable[[list[dict[str, Any]]], bool] = lambda _items: True
                      ) -> list[dict[str, Any]]:
        """GET /api/v1/notifications once `until(items)` holds, every one is delivered (or
        failed) and nothing new has appeared for `settle` seconds."""
        deadline = time.monotonic() + timeout
        last: list[dict[str, Any]] = []
        quiet_since = time.monotonic()
        while time.monotonic() < deadline:
            items = self.api("/api/v1/notifications")["items"]
            if [i["id"] for i in items] != [i["id"] for i in last] or not until(items):
                quiet_since = time.monotonic()
            last = items
            settled = all(i["status"] not in ("pending", "sending") for i in items)
            if settled and time.monotonic() - quiet_since >= settle:
                return list(items)
            time.sleep(0.1)
        raise AssertionError(f"notifications not settled after {timeout:.0f}s: {last}")

    def escalations(self) -> list[tuple[str, str, str]]:
        """(team, level, rule) of every escalation (trigger) sent, oldest first; checks that
        the Slack and PagerDuty stand-ins received exactly what the API says was delivered
        to them (escalations and the info notices: acting, fixed)."""
        # The finished execution's notices are written just after its outcome: wait for one,
        # so the quiet period cannot start (and end) before they exist.
        items = self.notifications(until=lambda items: any(n["kind"] == "info" for n in items))
        delivered = [(c["channel_type"], n["kind"]) for n in items for c in n["channels"]
                     if c["status"] == "delivered"]
        assert len(self.slack.requests) == sum(1 for t, _ in delivered if t == "slack")
        assert len(self.pagerduty.events) == sum(1 for t, _ in delivered if t == "pagerduty")
        assert ("slack", "info") in delivered, items  # the owner hears what Remediator did
        return [(n["team"], n["level"], n["rule"]) for n in reversed(items)
                if n["kind"] == "trigger"]

    def seconds_to_validated(self, execution: dict[str, Any]) -> float:
        """From the alert's 202 to the end of the execution's last validation step."""
        ends = [datetime.fromisoformat(s["started_at"]).timestamp() + float(s["duration_s"])
                for s in execution["steps"] if s["phase"] == "validate" and s["started_at"]]
        return max(ends) - self.received_at


def _write_config(tmp: Path, container: str, app_url: str) -> Path:
    return remediator_config(
        tmp, container, app_url, f"http://127.0.0.1:{free_port()}",
        alertmanager_url=f"http://127.0.0.1:{free_port()}",
        escalation_path=ROOT / "config" / "escalation.yml",
        config_files=["/app/config/model.yml"])


def wait_healthy(app_url: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(requests.RequestException, ValueError):
            if requests.get(f"{app_url}/health", timeout=2).json() == RUNBOOK_HEALTHY:
                return
        time.sleep(0.1)
    raise AssertionError(f"{app_url} not healthy after {timeout:.0f}s")


def start_app(resources: Resources, image: str, name: str, *,
              environment: dict[str, str] | None = None,
              config_dir: Path | None = None) -> tuple[Container, str]:
    """A healthy app container shaped like app-prod; returns it and its base URL."""
    spec = AppSpec(name=name, image=image, port=free_port(),
                   models_volume=resources.volume().name, backup_volume=resources.volume().name)
    kwargs = app_container_kwargs(spec, resources.labels())
    if environment:
        kwargs["environment"] = environment
    if config_dir is not None:  # config managed outside the container (survives recreate)
        config_dir.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / "config" / "model.yml", config_dir / "model.yml")
        kwargs["volumes"][str(config_dir)] = {"bind": "/app/config", "mode": "rw"}
    box = resources.client.containers.run(**kwargs)
    resources.containers.append(box)
    app_url = f"http://127.0.0.1:{spec.port}"
    wait_healthy(app_url)
    return box, app_url


def seed_last_known_good(client: docker.DockerClient, config: Path, db: Path) -> None:
    """Record the healthy target as its last-known-good, as `make up` does (and as a
    closed incident would)."""
    record_known_good(client, config, db, load_config(config, env={}).targets[0].name)


@contextlib.contextmanager
def remediator_serve(workdir: Path, config: Path, db: Path) -> Iterator[Proc]:
    with serve_remediator(workdir, config, db, free_port()) as proc:
        yield proc


def remove_app(client: docker.DockerClient, name: str) -> None:
    """The app under its name, and any container a recreate parked (name-old-...)."""
    selector = {"label": f"{LABEL}={SESSION_ID}", "name": name}
    for box in client.containers.list(all=True, filters=selector):
        with contextlib.suppress(docker.errors.NotFound):
            box.remove(force=True, v=False)


@contextlib.contextmanager
def scenario_rig(tmp: Path, resources: Resources, image: str, scenario: str,
                 monkeypatch: pytest.MonkeyPatch, *, environment: dict[str, str] | None = None,
                 config_on_host: bool = False) -> Iterator[Rig]:
    """Healthy app + seeded last-known-good + `remediator serve` + Slack/PagerDuty sinks."""
    client = resources.client
    name = f"scn-{SESSION_ID}-{scenario}"
    workdir = tmp / "remediator"
    workdir.mkdir()
    try:
        _, app_url = start_app(resources, image, name, environment=environment,
                               config_dir=tmp / "app-config" if config_on_host else None)
        config = _write_config(tmp, name, app_url)
        db = workdir / "remediator.db"
        seed_last_known_good(client, config, db)
        with PagerDutySink() as pagerduty, HttpSink(path="/slack") as slack:
            for variable in CHANNEL_ENV:
                monkeypatch.delenv(variable, raising=False)
            monkeypatch.setenv("REMEDIATOR_WEBHOOK_TOKEN", TOKEN)
            monkeypatch.setenv("PAGERDUTY_ROUTING_KEY", ROUTING_KEY)
            monkeypatch.setenv("PAGERDUTY_EVENTS_URL", pagerduty.url)
            monkeypatch.setenv("SLACK_WEBHOOK_URL", slack.url)
            with remediator_serve(workdir, config, db) as proc:
                yield Rig(client, name, app_url, proc, pagerduty, slack, config=config,
                          db=db)
    finally:
        remove_app(client, name)
