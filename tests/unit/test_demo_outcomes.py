"""`make demo` says what happened: a decision not to act is printed with the escalation
Remediator sent, as soon as the API shows it; a timeout names what was waited for and never
calls a healthy app unhealthy. Remediator's API is a stand-in answering recorded JSON."""

from __future__ import annotations

import time
from typing import Any

import pytest

from devstack.demo import ALERT_OF, FAULTS, DemoFailed, DemoResult, Watch, _refused, _timed_out

BUDGET = ("budget exhausted: 5 runs per hour on app-prod; escalating instead of acting")


class Api:
    """GET path -> JSON, from lists the test sets."""

    def __init__(self) -> None:
        self.incidents: list[dict[str, Any]] = []
        self.executions: list[dict[str, Any]] = []
        self.notifications: list[dict[str, Any]] = []

    def __call__(self, path: str) -> Any:
        name = path.split("?")[0].rsplit("/", 1)[-1]
        return {"items": list(getattr(self, name))}


def incident(id_: int, **fields: Any) -> dict[str, Any]:
    """An incident of ModelLoadFailure that started now (after the Watch's fault)."""
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 1))
    return {"id": id_, "alertname": "ModelLoadFailure", "note": None, "claimed_by": None,
            "reopened": 0, "notices": 1, "fixed_at": None, "status": "firing",
            "startsAt": now, **fields}


def test_every_scenario_names_the_alert_it_waits_for() -> None:
    assert set(ALERT_OF) == set(FAULTS)
    assert ALERT_OF["slow-load"] == "ModelLoadTime"
    assert ALERT_OF["memory-growth"] == "ModelMemoryUsage"
    assert ALERT_OF["permissions"] == "ModelLoadFailure"


def test_a_spent_budget_is_printed_with_its_escalation_at_once(
        capsys: pytest.CaptureFixture[str]) -> None:
    api = Api()
    before = {1: (0, None, None, 1)}
    api.incidents = [incident(2, note=BUDGET), incident(1)]
    api.notifications = [{"incident_id": 2, "kind": "trigger", "team": "ml-team-lead",
                          "level": "notify", "rule": "ml-remediation-budget-exhausted",
                          "status": "delivered", "reason": "5 runs in the last hour"}]
    result = DemoResult("permissions", "ModelLoadFailure")
    started = time.monotonic()
    with pytest.raises(DemoFailed, match="did not act on incident 2: budget exhausted") as err:
        _refused(api, before, result, Watch())
    assert time.monotonic() - started < 1  # not waiting out a timeout
    assert err.value.result is result and not result.repaired
    out = capsys.readouterr().out
    assert f"Remediator will not act on incident 2: {BUDGET}" in out
    assert ("escalation: ml-team-lead (notify, rule ml-remediation-budget-exhausted, "
            "delivered): 5 runs in the last hour") in out


def test_a_claim_and_a_reopened_refire_are_decisions_too() -> None:
    api = Api()
    api.incidents = [incident(3, claimed_by="alice")]
    with pytest.raises(DemoFailed, match="incident 3: claimed by alice"):
        _refused(api, {}, DemoResult("cuda", "ModelLoadFailure"), Watch())
    api.incidents = [incident(4, reopened=1, note=BUDGET, fixed_at=None)]
    before = {4: (0, None, None, 1)}
    with pytest.raises(DemoFailed, match="incident 4: budget exhausted"):
        _refused(api, before, DemoResult("cuda", "ModelLoadFailure"), Watch())


def test_a_repeat_of_a_fixed_incident_is_said_so() -> None:
    api = Api()
    api.incidents = [incident(5, notices=2, fixed_at="2026-12-06T09:00:00Z", status="firing",
                              startsAt="2026-12-06T08:58:00Z")]
    with pytest.raises(DemoFailed, match="repeat of incident 5, fixed at 2026-12-06T09:00"):
        _refused(api, {5: (0, None, None, 1)}, DemoResult("oom", "ModelLoadFailure"), Watch())
    # the old incident's resolved notice is no decision about this fault
    api.incidents = [incident(5, notices=3, fixed_at="2026-12-06T09:00:00Z",
                              status="resolved", startsAt="2026-12-06T08:58:00Z")]
    _refused(api, {5: (0, None, None, 2)}, DemoResult("oom", "ModelLoadFailure"), Watch())


def test_an_incident_remediator_acts_on_is_no_decision() -> None:
    api = Api()
    api.incidents = [incident(6), incident(7, alertname="ModelMemoryUsage", note=BUDGET)]
    _refused(api, {}, DemoResult("oom", "ModelLoadFailure"), Watch())  # nothing raised


def test_news_of_an_earlier_fault_is_no_decision_about_this_one() -> None:
    """A Remediator restarted on a fresh store hears the last fault's alert resolve."""
    api = Api()
    api.incidents = [incident(1, status="resolved", note="first seen resolved: nothing to do",
                              startsAt="2026-12-06T09:00:00Z")]
    _refused(api, {}, DemoResult("missing-file", "ModelLoadFailure"), Watch())


def test_an_alert_that_never_fired_is_named_and_the_healthy_app_called_healthy() -> None:
    result = DemoResult("slow-load", "ModelLoadTime")
    message = _timed_out(result, 600, {"status": "healthy"}, 20.0, set(), Api())
    assert message == ("ModelLoadTime did not fire within 600s of the fault (waited for it "
                       "in Prometheus' /api/v1/alerts); app-prod /health is healthy (since "
                       "+20.0s)")
    assert "not healthy" not in message and result.problem == message


def test_a_fired_alert_without_an_execution_says_so() -> None:
    result = DemoResult("oom", "ModelLoadFailure", firing_s=89.7)
    message = _timed_out(result, 600, {"status": "degraded"}, None, {1}, Api())
    assert message.startswith("ModelLoadFailure fired at +89.7s but Remediator started no "
                              "execution within 600s")


def test_the_table_row_spans() -> None:
    result = DemoResult("missing-file", "ModelLoadFailure", named="file_missing_or_corrupted",
                        firing_s=60.5, fix_s=72.0, healthy_s=91.6)
    assert result.repaired
    assert result.row() == ["missing-file", "ModelLoadFailure", "file_missing_or_corrupted",
                            "60.5", "11.5", "19.6", "91.6"]
    assert DemoResult("oom", "ModelLoadFailure").row()[3:] == ["-", "-", "-", "-"]
