"""Remediator down while an alert fires: on start it asks Alertmanager and opens the incident."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
import requests

from devstack.stack import render_alertmanager_config
from remediator.core.config import RemediatorConfig
from remediator.service.build import build_service
from tests.harness.docker_engine import ROOT
from tests.harness.processes import alertmanager, free_port
from tests.harness.stack import TOKEN, remediator, wait
from tests.support.fixtures import ALERTMANAGER

pytestmark = pytest.mark.e2e

FIXTURE = ALERTMANAGER / "firing-model-load-failure.json"


def test_alert_fired_while_remediator_was_down_is_reconciled_on_start(tmp_path: Path) -> None:
    # Alertmanager's webhook goes where nothing listens, for the whole test: its retries can
    # never reach this Remediator, so the incident can only come from reconciliation (a retry
    # landing first made this test depend on timing).
    dead_webhook = f"http://127.0.0.1:{free_port()}/api/v1/alerts"
    rem_port = free_port()
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    am_config = render_alertmanager_config(
        (ROOT / "monitoring/alertmanager.yml").read_text(),
        dead_webhook, str(token_file))
    alert = json.loads(FIXTURE.read_text())["alerts"][0]
    with alertmanager(tmp_path, am_config) as am:
        posted = requests.post(f"{am.url}/api/v2/alerts", timeout=5, json=[{
            "labels": alert["labels"], "annotations": alert["annotations"],
            "startsAt": alert["startsAt"], "generatorURL": "http://prometheus/graph"}])
        assert posted.status_code == 200
        config = tmp_path / "remediator.yml"
        config.write_text(f"alertmanager_url: {am.url}\ntargets: []\n")
        with remediator(tmp_path, config, rem_port) as rem:
            def incidents() -> list:  # type: ignore[type-arg]
                resp = requests.get(f"{rem.url}/api/v1/incidents", timeout=5,
                                    headers={"Authorization": f"Bearer {TOKEN}"})
                return list(resp.json()["items"])

            (incident,) = wait(incidents, 30, "the reconciled incident")
            assert incident["labels"]["alertname"] == "ModelLoadFailure"
            assert incident["startsAt"].startswith("2026-11-29T11:27:02.749")
            assert "no declared target" in incident["note"]
            # It came from reconciliation: the only thing in the inbox is what it stored.
            db = sqlite3.connect(tmp_path / "remediator" / "remediator.db")
            groups = [json.loads(b)["groupKey"] for (b,) in db.execute("SELECT body FROM inbox")]
            assert groups == ["reconcile"]


def test_an_incident_whose_alert_ended_while_remediator_was_down_is_resolved(
        tmp_path: Path) -> None:
    """Its resolved notice was lost: two reconciliations that do not find it in Alertmanager
    resolve it (no page for a service 'down' for hours). A silenced alert still fires."""
    am_config = render_alertmanager_config(
        (ROOT / "monitoring/alertmanager.yml").read_text(),
        f"http://127.0.0.1:{free_port()}/api/v1/alerts", str(tmp_path / "token"))
    (tmp_path / "token").write_text(TOKEN)
    fixture = json.loads(FIXTURE.read_text())
    alert = fixture["alerts"][0]
    with alertmanager(tmp_path, am_config) as am:
        assert requests.post(f"{am.url}/api/v2/alerts", timeout=5, json=[{
            "labels": alert["labels"], "annotations": alert["annotations"],
            "startsAt": alert["startsAt"]}]).status_code == 200
        books = tmp_path / "playbooks"
        books.mkdir()
        service = build_service(RemediatorConfig(alertmanager_url=am.url, targets=[]),
                                db_path=tmp_path / "r.db", playbooks_dir=books, token=TOKEN)
        try:
            reconciler = service.reconciler
            assert reconciler.reconcile() == 1  # the live alert: opened from Alertmanager
            # One whose resolved notice never came: Alertmanager has never heard of it.
            gone = json.loads(FIXTURE.read_text())
            gone["alerts"][0]["labels"]["instance"] = "app-prod-2:8080"
            gone["alerts"][0]["fingerprint"] = "00000000000000ff"
            service.store.add_inbox(json.dumps(gone).encode())
            service.worker.intake.drain()

            def statuses() -> dict[str, str]:
                return {i["labels"]["instance"]: i["status"]
                        for i in service.store.incidents()}

            assert statuses() == {"app-prod:8080": "firing", "app-prod-2:8080": "firing"}
            silence = {"matchers": [{"name": "alertname", "value": "ModelLoadFailure",
                                     "isRegex": False, "isEqual": True}],
                       "startsAt": "2026-01-01T00:00:00Z", "endsAt": "2099-01-01T00:00:00Z",
                       "createdBy": "test", "comment": "silenced is not resolved"}
            assert requests.post(f"{am.url}/api/v2/silences", json=silence,
                                 timeout=5).status_code == 200
            reconciler.reconcile()  # first miss: Alertmanager may just have restarted
            service.worker.intake.drain()
            assert statuses() == {"app-prod:8080": "firing", "app-prod-2:8080": "firing"}
            reconciler.reconcile()  # second miss in a row: its resolve was lost
            service.worker.intake.drain()
            assert statuses() == {"app-prod:8080": "firing", "app-prod-2:8080": "resolved"}
            reconciler.reconcile()
            service.worker.intake.drain()
            assert statuses() == {"app-prod:8080": "firing", "app-prod-2:8080": "resolved"}
        finally:
            service.close()
