"""End to end: a running `remediator serve` pages PagerDuty when production has been down
for the threshold, with no further alert arriving, and resolves the page when the alert
resolves.

The shipped config/escalation.yml with one change (the emergency "down for" threshold is
3s instead of 10m, as the e2e stack shortens Prometheus' `for:`); PAGERDUTY_EVENTS_URL
points at a PagerDuty stand-in that judges every event as Events API v2 does. The alert
matches no declared target, so only the escalation timer can act on it.
"""

from __future__ import annotations

import contextlib
import json
import re
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from tests.harness.processes import Proc, free_port, spawn, stop, wait_ready
from tests.support import PagerDutySink
from tests.support.escalation_kit import ROUTING_KEY
from tests.support.fixtures import alertmanager_payload

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "escalation-e2e-token"
THRESHOLD_S = 3.0
DOWN_RULE = "emergency-down-more-than-10-minutes"
CHANNEL_ENV = ("SLACK_WEBHOOK_URL", "TEAMS_WEBHOOK_URL", "ESCALATION_WEBHOOK_URL", "SMTP_HOST",
               "SMTP_FROM", "SMTP_TO")


def shipped_policy_with_short_downtime(path: Path) -> Path:
    policy = yaml.safe_load((ROOT / "config" / "escalation.yml").read_text())
    (rule,) = [r for r in policy["rules"] if r["name"] == DOWN_RULE]
    for condition in rule["when"]:
        if condition["fact"] == "down_for":
            condition["ge"] = f"{THRESHOLD_S:.0f}s"
    path.write_text(yaml.safe_dump(policy))
    return path


def remediator_config(tmp: Path) -> Path:
    path = tmp / "remediator.yml"
    path.write_text(f"""
mode: act
alertmanager_url: http://127.0.0.1:{free_port()}
escalation_path: {shipped_policy_with_short_downtime(tmp / "escalation.yml")}
targets:
  - name: app-prod
    selector: {{service: app-prod}}
    container: escalation-e2e-no-container
    base_url: http://127.0.0.1:{free_port()}
    backup_path: /backup/models
    bounds: {{max_memory: 4g, min_cpus: 0.5, max_cpus: 2}}
""")
    return path


@contextlib.contextmanager
def remediator_serve(tmp: Path, pagerduty: PagerDutySink,
                     monkeypatch: pytest.MonkeyPatch) -> Iterator[Proc]:
    workdir = tmp / "remediator"
    workdir.mkdir()
    for name in CHANNEL_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("REMEDIATOR_WEBHOOK_TOKEN", TOKEN)
    monkeypatch.setenv("PAGERDUTY_ROUTING_KEY", ROUTING_KEY)
    monkeypatch.setenv("PAGERDUTY_EVENTS_URL", pagerduty.url)
    port = free_port()
    argv = [str(Path(sys.executable).parent / "remediator"), "serve", "--host", "127.0.0.1",
            "--port", str(port), "--db", str(workdir / "remediator.db"),
            "--config", str(remediator_config(tmp)), "--playbooks", str(ROOT / "playbooks")]
    proc = spawn("remediator", argv, port, workdir)
    try:
        wait_ready(proc, "/healthz", timeout=30)  # /readyz would also want Docker
        yield proc
    finally:
        stop(proc)


def alert(status: str, starts_at: str) -> bytes:
    body = json.loads(alertmanager_payload("firing-model-load-failure.json"))
    (one,) = body["alerts"]
    one["labels"]["service"] = "payments"  # no declared target: nothing acts on it
    one.update(status=status, startsAt=starts_at, fingerprint="e5ca1a7e0000beef")
    if status == "resolved":
        one["endsAt"] = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    body["status"] = status
    return json.dumps(body).encode()


def post(proc: Proc, path: str, body: bytes | None = None) -> Any:
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    if body is None:
        resp = requests.get(proc.url + path, headers=headers, timeout=5)
    else:
        resp = requests.post(proc.url + path, data=body, headers=headers, timeout=5)
    assert resp.status_code in (200, 202), (resp.status_code, resp.text, proc.log_tail())
    return resp.json()


def wait_for(predicate: Any, timeout: float, what: str, proc: Proc) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}\n{proc.log_tail(40)}")


def test_down_past_the_threshold_pages_pagerduty_without_another_alert_and_resolves(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with PagerDutySink() as pagerduty, remediator_serve(tmp_path, pagerduty, monkeypatch) as rem:
        started, clock_start = datetime.now(UTC), time.monotonic()
        post(rem, "/api/v1/alerts", alert("firing", started.isoformat().replace("+00:00", "Z")))
        # verdicts fill once the sink has judged a request (requests fill before that)
        wait_for(lambda: pagerduty.verdicts, THRESHOLD_S + 10, "the page", rem)
        paged_after = time.monotonic()
        waited = pagerduty.requests[0].received_at - clock_start
        assert THRESHOLD_S <= waited < THRESHOLD_S + 1.0  # at the threshold: not before, no lag
        assert pagerduty.verdicts == [202], pagerduty.rejections  # valid Events v2
        (trigger,) = pagerduty.events
        assert trigger["event_action"] == "trigger"
        assert trigger["payload"]["severity"] == "critical"
        # incident 1 of this store (its instance id), to the emergency team, as a page
        assert re.fullmatch(r"remediator/[0-9a-f]{8}/1/emergency/page", trigger["dedup_key"])
        assert "down for more than 10 minutes" in trigger["payload"]["custom_details"]["text"]

        time.sleep(1.5)  # the timer keeps running: the rule still matches, nothing new goes
        assert len(pagerduty.requests) == 1 and time.monotonic() - paged_after >= 1.5

        post(rem, "/api/v1/alerts", alert("resolved", started.isoformat().replace("+00:00", "Z")))
        wait_for(lambda: len(pagerduty.verdicts) >= 2, 10, "the resolve", rem)
        assert pagerduty.verdicts == [202, 202], pagerduty.rejections
        resolve = pagerduty.events[1]
        assert (resolve["event_action"], resolve["dedup_key"]) == ("resolve", trigger["dedup_key"])

        # Remediator records "delivered" once PagerDuty's answer is back: wait for that.
        def kinds() -> list[tuple[str, str]]:
            return [(n["kind"], n["status"]) for n in post(rem, "/api/v1/notifications")["items"]]

        wait_for(lambda: kinds() == [("resolve", "delivered"), ("trigger", "delivered")], 10,
                 "both notifications recorded as delivered", rem)
        assert ROUTING_KEY not in json.dumps(post(rem, "/api/v1/notifications")["items"])
        delivered = 'remediator_notifications_total{channel="pagerduty",outcome="delivered"} 2.0'
        wait_for(lambda: delivered in requests.get(rem.url + "/metrics", timeout=5).text, 10,
                 "the delivered metric at 2", rem)
