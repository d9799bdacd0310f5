"""`make demo` injects its fault only once app-prod's last alert has cleared in Prometheus:
a fault injected while that alert still fires is the same alert (same startsAt) to
Alertmanager, and Remediator takes it for a repeat of the incident it already fixed (found
running `make demo SCENARIO=old-format` then `SCENARIO=permissions`). Prometheus is a
local HTTP stand-in answering its /api/v1/alerts."""

from __future__ import annotations

import json

import pytest

from devstack.demo import wait_alerts_clear
from tests.support import HttpSink


def alerts(*states: str, job: str = "app-prod") -> dict[str, object]:
    return {"status": "success", "data": {"alerts": [
        {"labels": {"alertname": "ModelLoadFailure", "job": job}, "state": state}
        for state in states]}}


def test_the_fault_waits_until_the_last_alert_has_cleared(
        capsys: pytest.CaptureFixture[str]) -> None:
    with HttpSink(path="/api/v1/alerts") as prometheus:
        prometheus.set_responses([(200, {}, alerts("firing")), (200, {}, alerts("firing")),
                                  (200, {}, alerts("pending"))])
        # another job's alert does not hold the demo back
        prometheus.default_body = json.dumps(alerts("firing", job="remediator"))
        wait_alerts_clear(prometheus.base_url, timeout=10, poll=0.01)
        assert len(prometheus.requests) == 4
    assert "Waiting for the last incident's alert to clear (ModelLoadFailure firing)" in (
        capsys.readouterr().out)


def test_an_alert_that_never_clears_is_a_clear_error() -> None:
    with HttpSink(path="/api/v1/alerts") as prometheus:
        prometheus.default_body = json.dumps(alerts("firing"))
        with pytest.raises(TimeoutError, match=r"did not clear in 0s: ModelLoadFailure firing"):
            wait_alerts_clear(prometheus.base_url, timeout=0.05, poll=0.01)
