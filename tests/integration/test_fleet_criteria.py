"""The runbook's two fleet-wide criteria, driven by alerts posted to a running
`remediator serve` with two targets declared (the shipped config/escalation.yml):

- "Multiple services are affected": ModelLoadFailure from two targets' services notifies
  infrastructure (affected_service_count counts services across targets);
- "Multiple different models are failing to load": the serving alerts name their model in
  a `model` label; two different ones notify ml-team-lead.

One alert alone triggers neither. Notices reach a Slack stand-in.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.harness.processes import Proc, free_port, spawn, stop, wait_ready
from tests.support import HttpSink

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "fleet-criteria-token"
CHANNEL_ENV = ("PAGERDUTY_ROUTING_KEY", "TEAMS_WEBHOOK_URL", "ESCALATION_WEBHOOK_URL",
               "SMTP_HOST", "SMTP_FROM", "SMTP_TO")
SERVICES = "infra-multiple-services-affected"
MODELS = "ml-multiple-models-failing"


def config(tmp: Path) -> Path:
    path = tmp / "remediator.yml"
    path.write_text(f"""
mode: act
alertmanager_url: http://127.0.0.1:{free_port()}
escalation_path: {ROOT / "config" / "escalation.yml"}
targets:
  - name: app-prod
    selector: {{service: app-prod}}
    container: fleet-no-container-a
    base_url: http://127.0.0.1:{free_port()}
  - name: app-canary
    selector: {{service: app-canary}}
    container: fleet-no-container-b
    base_url: http://127.0.0.1:{free_port()}
""")
    return path


@contextlib.contextmanager
def serve(tmp: Path) -> Iterator[Proc]:
    playbooks = tmp / "playbooks"  # none: the criteria come from the alerts alone
    playbooks.mkdir()
    port = free_port()
    argv = [str(Path(sys.executable).parent / "remediator"), "serve", "--host", "127.0.0.1",
            "--port", str(port), "--db", str(tmp / "r.db"), "--config", str(config(tmp)),
            "--playbooks", str(playbooks)]
    proc = spawn("remediator", argv, port, tmp)
    try:
        wait_ready(proc, "/healthz", timeout=60)
        yield proc
    finally:
        stop(proc)


def alert(service: str, model: str, fingerprint: str) -> bytes:
    """ModelLoadFailure as Alertmanager delivers it for one scrape target."""
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    one = {"status": "firing", "startsAt": now, "endsAt": "0001-01-01T00:00:00Z",
           "labels": {"alertname": "ModelLoadFailure", "severity": "critical", "job": service,
                      "instance": f"{service}:8080", "service": service, "model": model},
           "annotations": {"summary": "Model failed to load", "for": "1m"},
           "generatorURL": "", "fingerprint": fingerprint}
    return json.dumps({"version": "4", "status": "firing", "receiver": "remediator",
                       "groupKey": f"{{}}:{{service=\"{service}\"}}", "groupLabels": {},
                       "commonLabels": {}, "commonAnnotations": {},
                       "externalURL": "http://alertmanager", "truncatedAlerts": 0,
                       "alerts": [one]}).encode()


def api(proc: Proc, path: str, body: bytes | None = None) -> Any:
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    resp = (requests.post(proc.url + path, data=body, headers=headers, timeout=5)
            if body is not None else requests.get(proc.url + path, headers=headers, timeout=5))
    assert resp.status_code in (200, 202), (resp.status_code, resp.text)
    return resp.json()


def fleet_notices(proc: Proc) -> dict[str, dict[str, Any]]:
    items = api(proc, "/api/v1/notifications")["items"]
    return {n["rule"]: n for n in items if n["rule"] in (SERVICES, MODELS)}


def test_alerts_from_two_targets_with_two_models_trigger_both_fleet_criteria(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in CHANNEL_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("REMEDIATOR_WEBHOOK_TOKEN", TOKEN)
    with HttpSink(path="/services/T0/B0/fleet") as slack:
        monkeypatch.setenv("SLACK_WEBHOOK_URL", slack.url)
        with serve(tmp_path) as proc:
            api(proc, "/api/v1/alerts", alert("app-prod", "mobile-multimodal-int8", "a" * 16))
            incidents = _wait(lambda: api(proc, "/api/v1/incidents")["items"], proc)
            assert incidents[0]["target"] == "app-prod"
            time.sleep(2.5)  # a few timer passes: one service, one model is no fleet problem
            assert fleet_notices(proc) == {}

            api(proc, "/api/v1/alerts", alert("app-canary", "mobile-multimodal-fp32", "b" * 16))
            found = _wait(lambda: (n := fleet_notices(proc)) and len(n) == 2
                          and all(x["status"] == "delivered" for x in n.values()) and n, proc)
            assert {i["target"] for i in api(proc, "/api/v1/incidents")["items"]} == {
                "app-prod", "app-canary"}
            assert found[SERVICES]["team"] == "infrastructure"
            assert "affected_service_count=2" in found[SERVICES]["reason"]
            assert found[MODELS]["team"] == "ml-team-lead"
            assert "failing_model_count=2" in found[MODELS]["reason"]
            texts = [r.text for r in slack.requests]
            assert any("Two or more services are affected" in t for t in texts)
            assert any("Two or more different models are failing" in t for t in texts)


def _wait(probe: Any, proc: Proc, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out\n{proc.log_tail(40)}")
