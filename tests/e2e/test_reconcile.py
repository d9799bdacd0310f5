"""Remediator down while an alert fires: on start it asks Alertmanager and opens the incident."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
import requests

from remediator.stack import render_alertmanager_config
from tests.harness.docker_engine import ROOT
from tests.harness.processes import alertmanager, free_port
from tests.harness.stack import TOKEN, remediator, wait

pytestmark = pytest.mark.e2e

FIXTURE = ROOT.parent / "shared/fixtures/alertmanager/firing-model-load-failure.json"


def test_alert_fired_while_remediator_was_down_is_reconciled_on_start(tmp_path: Path) -> None:
    rem_port = free_port()  # nothing listens yet: Alertmanager's webhook fails
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    am_config = render_alertmanager_config(
        (ROOT / "monitoring/alertmanager.yml").read_text(),
        f"http://127.0.0.1:{rem_port}/api/v1/alerts", str(token_file))
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
            # It came from reconciliation, not from Alertmanager's (later) webhook retry.
            db = sqlite3.connect(tmp_path / "remediator" / "remediator.db")
            groups = [json.loads(b)["groupKey"] for (b,) in db.execute("SELECT body FROM inbox")]
            assert groups[0] == "reconcile"
