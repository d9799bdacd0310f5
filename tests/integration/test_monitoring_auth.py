"""Monitoring is not a way in (issue 16 item 1): Prometheus and Alertmanager, run as `make up`
and the harness run them (a web config with a random bcrypt-hashed password), refuse anyone
without the credentials; Remediator's reconciliation and Prometheus' alerting carry them.

Real prometheus and prometheus-alertmanager binaries on loopback ports.
"""

from __future__ import annotations

import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests

from devstack.stack import monitoring_auth, render_prometheus_config
from remediator.adapters.http import HttpClient
from remediator.adapters.monitoring_auth import monitoring_client
from remediator.core.config import RemediatorConfig
from remediator.service.reconcile import Reconciler
from tests.harness.processes import alertmanager, prometheus
from tests.harness.stack import wait

AM_CONFIG = "route: {receiver: devnull}\nreceivers: [{name: devnull}]\n"
ALERT = [{"labels": {"alertname": "ModelLoadFailure", "service": "app-prod",
                     "instance": "app-prod:8080", "severity": "critical"},
          "startsAt": datetime.now(UTC).isoformat()}]


def test_an_alert_posted_to_alertmanager_without_credentials_is_refused(tmp_path: Path) -> None:
    with alertmanager(tmp_path, AM_CONFIG) as am:
        refused = requests.post(f"{am.base}/api/v2/alerts", json=ALERT, timeout=5)
        assert refused.status_code == 401
        wrong = requests.post(f"{am.base}/api/v2/alerts", json=ALERT, timeout=5,
                              auth=("monitoring", "not-the-password"))
        assert wrong.status_code == 401
        assert requests.get(f"{am.base}/api/v2/alerts", timeout=5).status_code == 401
        assert requests.get(f"{am.url}/api/v2/alerts", timeout=5).json() == []  # none got in
        assert requests.post(f"{am.url}/api/v2/alerts", json=ALERT, timeout=5).ok


def test_prometheus_refuses_queries_without_credentials_and_has_no_lifecycle_api(
        tmp_path: Path) -> None:
    with prometheus(tmp_path, "global: {scrape_interval: 1s}\n") as prom:
        query = "/api/v1/query?query=up"
        assert requests.get(f"{prom.base}{query}", timeout=5).status_code == 401
        assert requests.get(f"{prom.url}{query}", timeout=5).json()["status"] == "success"
        # Even with the credentials, nobody can shut it down or reload it over HTTP.
        assert requests.post(f"{prom.url}/-/quit", timeout=5).status_code == 403
        assert prom.process.poll() is None


def test_the_credentials_are_random_and_private_from_creation(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    one, two = monitoring_auth(tmp_path / "a"), monitoring_auth(tmp_path / "b")
    assert one.password != two.password and len(one.password) >= 24
    for path in (one.password_file, one.web_config):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert one.password not in one.web_config.read_text()  # only its bcrypt hash
    assert monitoring_auth(tmp_path / "a").password == one.password  # kept across `make up`s


def test_reconciliation_and_prometheus_alerting_carry_the_credentials(tmp_path: Path) -> None:
    auth = monitoring_auth(tmp_path)
    with alertmanager(tmp_path, AM_CONFIG, auth=auth) as am:
        # Prometheus' alerting block as `make up` renders it reaches the guarded Alertmanager.
        # for: 8s: fired after Prometheus has discovered the Alertmanager (5 s throttle).
        rules = {"alerts.yml": "groups:\n- name: t\n  rules:\n  - alert: Always\n"
                               "    expr: vector(1)\n    for: 8s\n"
                               "    labels: {service: app-prod}\n"}
        config = render_prometheus_config(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\nrule_files: [alerts.yml]\n"
            "alerting:\n  alertmanagers:\n  - static_configs: [{targets: ['alertmanager:9093']}]\n",
            {"alertmanager:9093": f"127.0.0.1:{am.port}"}, auth=auth)
        with prometheus(tmp_path, config, rules, auth=auth):
            wait(lambda: any(a["labels"]["alertname"] == "Always" for a in
                             requests.get(f"{am.url}/api/v2/alerts", timeout=5).json()), 30,
                 "Prometheus' alert to reach Alertmanager through basic auth")

        settings = RemediatorConfig(alertmanager_url=am.base,
                                    monitoring_password_file=str(auth.password_file))
        fetched = Reconciler(None, am.base, lambda b: 0, lambda: None,  # type: ignore[arg-type]
                             receiver="devnull", client=monitoring_client(settings)).fetch()
        assert [a["labels"]["alertname"] for a in fetched] == ["Always"]
        without = Reconciler(None, am.base, lambda b: 0, lambda: None,  # type: ignore[arg-type]
                             receiver="devnull", client=HttpClient())
        with pytest.raises(ConnectionError, match="401"):
            without.fetch()


def test_a_missing_password_file_is_a_config_error_naming_it(tmp_path: Path) -> None:
    from remediator.adapters.monitoring_auth import monitoring_auth as read_auth
    from remediator.errors import ConfigError

    missing = tmp_path / "nope"
    with pytest.raises(ConfigError, match=str(missing)):
        read_auth(RemediatorConfig(monitoring_password_file=str(missing)))
    assert read_auth(RemediatorConfig()) is None


def test_prometheus_scrapes_alertmanager_with_the_credentials_as_shipped(
        tmp_path: Path) -> None:
    """The shipped prometheus.yml's alertmanager job, rendered as `make up` renders it, gets
    Alertmanager's metrics through basic auth (AlertmanagerNotificationsFailing needs them)."""
    from devstack.stack import Timings, render_alerts
    from tests.harness.processes import free_port

    root = Path(__file__).resolve().parents[2]
    auth = monitoring_auth(tmp_path)
    with alertmanager(tmp_path, AM_CONFIG, auth=auth) as am:
        dead = f"127.0.0.1:{free_port()}"
        config = render_prometheus_config(
            (root / "monitoring/prometheus.yml").read_text(),
            {"alertmanager:9093": f"127.0.0.1:{am.port}", "app-prod:8080": dead,
             "remediator:9096": dead}, Timings(scrape_interval="1s"), auth)
        rules = {"alerts.yml": render_alerts((root / "monitoring/alerts.yml").read_text())}
        with prometheus(tmp_path, config, rules, auth=auth) as prom:
            def scraped() -> list[dict[str, object]]:
                answer = requests.get(f"{prom.url}/api/v1/query", timeout=5, params={
                    "query": 'alertmanager_notifications_failed_total{service="alertmanager"}'})
                return list(answer.json()["data"]["result"])
            assert wait(scraped, 30, "Alertmanager's metrics in Prometheus")
