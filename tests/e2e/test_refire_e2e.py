"""An alert that fires again soon after it resolved reaches Remediator in seconds.

A re-fire that finds Alertmanager's aggregation group for {alertname, service} still there
is sent at the group's next group_interval tick, not after group_wait: with the root's 1m
inherited, `make demo-all` saw it 40-55 s late. The group is there when Prometheus has
re-sent the resolved alert (it does for 15 minutes) or when another alert of the same
service fires; the test takes the second, deterministic case: another replica's
ModelLoadFailure, posted to Alertmanager right after the resolved notice. The monitoring
configs exactly as shipped (prometheus.yml, alerts.yml, alertmanager.yml), only addresses
changed; the app is a local /metrics the test switches between serving its primary model
and its fallback; Remediator's webhook is a recording sink. Real Prometheus and
Alertmanager binaries.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from devstack.stack import (
    monitoring_auth,
    render_alertmanager_config,
    render_alerts,
    render_prometheus_config,
)
from tests.harness.processes import alertmanager, free_port, prometheus
from tests.harness.stack import wait
from tests.support.http_sink import HttpSink, RecordedRequest

pytestmark = [pytest.mark.e2e]

ROOT = Path(__file__).resolve().parents[2]
SENT_WITHIN_S = 15.0


class FakeApp(HttpSink):
    """app-prod's /metrics: the primary serving, or the fallback (ModelLoadFailure)."""

    fallback = 0

    def respond(self, request: RecordedRequest) -> tuple[int, Mapping[str, str], bytes]:
        body = (f"model_loaded 1\nmodel_load_in_progress_seconds 0\nmodel_oom_restarts 0\n"
                f"model_fallback_active {self.fallback}\n")
        return 200, {"Content-Type": "text/plain; version=0.0.4"}, body.encode()


@pytest.fixture
def app() -> Iterator[FakeApp]:
    with FakeApp(path="/metrics") as fake:
        yield fake


def posts(hook: HttpSink, status: str, after: float = 0.0) -> list[RecordedRequest]:
    """The webhook posts carrying app-prod's own ModelLoadFailure in ``status``."""
    return [r for r in hook.requests if r.received_at > after and any(
        a["status"] == status and a["labels"].get("instance") == "app-prod:8080"
        and a["labels"]["alertname"] == "ModelLoadFailure" for a in r.json()["alerts"])]


def another_replica_fails(am_url: str) -> None:
    now = datetime.now(UTC)
    alert = {"labels": {"alertname": "ModelLoadFailure", "service": "app-prod",
                        "instance": "app-prod-2:8080", "severity": "critical"},
             "startsAt": now.isoformat(), "endsAt": (now + timedelta(minutes=10)).isoformat()}
    requests.post(f"{am_url}/api/v2/alerts", json=[alert], timeout=5).raise_for_status()


def test_model_load_failure_firing_again_soon_after_it_resolved_is_sent_within_seconds(
        tmp_path: Path, app: FakeApp) -> None:
    auth = monitoring_auth(tmp_path)
    token = tmp_path / "token"
    token.write_text("not-checked-by-the-sink")
    am_port = free_port()
    with HttpSink(path="/api/v1/alerts") as hook:
        am_config = render_alertmanager_config(
            (ROOT / "monitoring/alertmanager.yml").read_text(), hook.url, str(token))
        prom_config = render_prometheus_config(
            (ROOT / "monitoring/prometheus.yml").read_text(),
            {"app-prod:8080": f"127.0.0.1:{app.port}", "alertmanager:9093": f"127.0.0.1:{am_port}",
             "remediator:9096": f"127.0.0.1:{free_port()}"}, auth=auth)
        rules = {"alerts.yml": render_alerts((ROOT / "monitoring/alerts.yml").read_text())}
        with alertmanager(tmp_path, am_config, port=am_port, auth=auth) as am, \
                prometheus(tmp_path, prom_config, rules, auth=auth) as prom:
            def firing_in_prometheus() -> bool:
                alerts: list[dict[str, Any]] = requests.get(
                    f"{prom.url}/api/v1/alerts", timeout=5).json()["data"]["alerts"]
                return any(a["labels"]["alertname"] == "ModelLoadFailure"
                           and a["state"] == "firing" for a in alerts)

            time.sleep(6)  # a healthy scrape first
            app.fallback = 1
            wait(lambda: posts(hook, "firing"), 60, "the first firing at the webhook")
            app.fallback = 0
            wait(lambda: posts(hook, "resolved"), 90, "the resolved notice at the webhook")
            resolved_at = time.monotonic()
            another_replica_fails(am.url)
            app.fallback = 1
            wait(firing_in_prometheus, 60, "ModelLoadFailure firing again", interval=0.2)
            fired_at = time.monotonic()
            assert fired_at - resolved_at < 60, "not the case under test: a re-fire within 1m"
            [again] = wait(lambda: posts(hook, "firing", after=resolved_at), 90,
                           "the second firing at the webhook")
            late = again.received_at - fired_at
            print(f"\nre-fire {fired_at - resolved_at:.1f}s after the resolved notice; "
                  f"at the webhook {late:.1f}s after Prometheus fired it")
            assert late <= SENT_WITHIN_S, f"the re-fire reached Remediator {late:.1f}s late"
