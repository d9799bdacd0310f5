"""One hostile alert against a running `remediator serve`: long, separator-rich labels and
annotations (the shape that made redaction quadratic) must not stall the service.

Before the fix, an alert with a 120 KB summary was answered 202, then `/healthz` timed out
for 50 s and the incident report did not answer: redaction held the GIL for minutes.
"""

from __future__ import annotations

import threading
import time

import pytest
import requests

from tests.reliability.conftest import (
    ServeFactory,
    SleeperFactory,
    alert,
    config_yaml,
    target_yaml,
    wait_for,
    webhook,
)
from tests.support.http_sink import HttpSink

pytestmark = pytest.mark.docker

PLAYBOOK = """
name: tell
match: {alertname: ModelLoadFailure}
steps:
  - id: tell
    phase: diagnose
    action: notify
    with: {team: ml-team-lead, level: notify, reason: "Model failed to load; on it"}
"""

HEALTHZ_LIMIT_S = 5.0
"""Slowest /healthz answer allowed while the alert is handled: milliseconds when healthy,
seconds on a busy 2-core machine; the defect stalled it for 50 s."""

# ~600 KB of separator-rich text, each field far beyond where the old patterns went
# quadratic (0.3 s at 2 KB, so hours at 100 KB); the body stays under the 1 MiB limit.
SUMMARY = "a-" * 60_000 + " SMTP_PASSWORD=hunter2 " + "a-:" * 20_000
LABELS = {"instance": "a-" * 50_000, "pod": "x.y:" * 25_000, "path": "/a/" * 30_000}
ANNOTATIONS = {"summary": SUMMARY, "description": "name= a-b; " * 10_000,
               "runbook": "http://a-" * 10_000}


class HealthPoller(threading.Thread):
    """Polls /healthz every 0.2 s and records how long each answer took (or that it failed)."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            start = time.monotonic()
            try:
                requests.get(f"{self.url}/healthz", timeout=30).raise_for_status()
            except requests.RequestException as exc:
                self.failures.append(repr(exc))
            self.latencies.append(time.monotonic() - start)
            self.stop.wait(0.2)


def test_a_huge_separator_rich_alert_does_not_stall_serve(
        serve: ServeFactory, sleeper: SleeperFactory) -> None:
    box = sleeper()
    with HttpSink(path="/escalations", default_status=202) as sink:
        rem = serve(config_yaml(target_yaml("app-prod", box.name)), {"tell.yml": PLAYBOOK},
                    env={"ESCALATION_WEBHOOK_URL": sink.url})
        hostile = alert(**LABELS)
        hostile["annotations"] = ANNOTATIONS
        body = webhook(hostile)
        assert 500_000 < len(body) < 2**20

        poller = HealthPoller(rem.url)
        poller.start()
        try:
            assert rem.post(body, timeout=30).status_code == 202
            (execution,) = wait_for(
                lambda: [e for e in rem.items("executions") if e["state"] == "finished"],
                90, "the execution of the hostile alert to finish")
            assert execution["outcome"] == "escalated", execution
            # The notification carrying every label was rendered (redacted) and delivered.
            wait_for(lambda: sink.requests, 90, "the notification to reach the channel")

            started = time.monotonic()
            resp = requests.get(f"{rem.url}/api/v1/incidents/{execution['incident_id']}/report",
                                headers={"Authorization": "Bearer faults-token"}, timeout=30)
            report_s = time.monotonic() - started
        finally:
            poller.stop.set()
            poller.join(35)

    assert resp.status_code == 200, resp.text[:500]
    assert report_s < 10, f"the report took {report_s:.1f}s"
    assert not poller.failures, poller.failures[:3]
    assert len(poller.latencies) >= 5
    assert max(poller.latencies) < HEALTHZ_LIMIT_S, sorted(poller.latencies)[-5:]
    # Redaction kept the text and masked only the secret, in the report and the notice.
    report = resp.text  # Markdown: the mask is escaped as \*\*\*
    assert "hunter2" not in report
    assert "SMTP_PASSWORD=\\*\\*\\*" in report
    assert ("a-" * 1000) in report and ("a-:" * 1000) in report
    notice = sink.requests[0].text
    assert "hunter2" not in notice
