"""Fault: a flapping alert — the same alert fires and resolves ten times in a row.

Remediator acts at most its budget of runs per target per hour (re-fires inside the
stability window reopen the fixed incident, and those runs count too), then stops acting
and tells ml-team-lead once for the budget window, however often the alert comes back.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from functools import partial
from typing import Any

import pytest

from tests.reliability.conftest import (
    Served,
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

BUDGET = 3
FLAPS = 10
RULE = "ml-remediation-budget-exhausted"

PLAYBOOK = """
name: look
match: {alertname: ModelLoadFailure}
steps:
  - id: look
    phase: diagnose
    action: docker.inspect
"""


def budget_triggers(rem: Served) -> list[dict[str, Any]]:
    return [n for n in rem.api("/api/v1/notifications?limit=100")["items"]
            if n["kind"] == "trigger" and n["rule"] == RULE]


def finished(rem: Served, runs: int) -> bool:
    return len([e for e in rem.items("executions") if e["state"] == "finished"]) == runs


def hour_windows(start: datetime, end: datetime) -> int:
    """How many clock-hour budget windows (the shipped policy's 1h) [start, end] touches."""
    return int(end.timestamp()) // 3600 - int(start.timestamp()) // 3600 + 1


def test_flapping_alert_spends_the_budget_then_escalates_once_per_window(
        serve: ServeFactory, sleeper: SleeperFactory) -> None:
    box = sleeper()
    with HttpSink(path="/escalations", default_status=202) as sink:
        rem = serve(config_yaml(target_yaml("app-prod", box.name),
                                max_runs_per_hour=BUDGET, stability_window="10m"),
                    {"look.yml": PLAYBOOK}, env={"ESCALATION_WEBHOOK_URL": sink.url})
        first_spent: datetime | None = None
        for flap in range(1, FLAPS + 1):
            starts_at = datetime.now(UTC)
            assert rem.post(webhook(alert(starts_at=starts_at))).status_code == 202
            if flap <= BUDGET:
                wait_for(partial(finished, rem, flap), 30, f"run {flap} of the budget")
            else:
                spent = wait_for(lambda: [i for i in rem.items("incidents")
                                          if i["status"] == "firing"], 30, "the re-fire")
                assert spent[0]["note"].startswith("budget exhausted"), spent
                if first_spent is None:
                    first_spent = datetime.now(UTC)
                    # Told at the first re-fire past the budget (a reopened incident).
                    wait_for(lambda: budget_triggers(rem), 30, "the budget escalation")
                else:
                    time.sleep(1.2)  # the escalation timer sees it firing, again
            assert rem.post(webhook(alert(status="resolved", starts_at=starts_at))
                            ).status_code == 202
            wait_for(lambda: all(i["status"] == "resolved" for i in rem.items("incidents")),
                     30, f"flap {flap} to resolve")
        done = datetime.now(UTC)

        executions = rem.items("executions")
        assert len(executions) == BUDGET, executions
        assert all(e["outcome"] == "success" for e in executions)
        # The runs the budget allowed include reopenings of the fixed incident.
        reopened = [i for i in rem.items("incidents") if i["reopened"]]
        assert reopened and reopened[0]["reopened"] >= BUDGET - 1, reopened

        assert first_spent is not None
        triggers = budget_triggers(rem)
        assert 1 <= len(triggers) <= hour_windows(first_spent, done), triggers
        wait_for(lambda: all(n["status"] == "delivered" for n in budget_triggers(rem)), 30,
                 "the budget escalation to be delivered")
        sent = [r.json() for r in sink.requests if r.json()["kind"] == "trigger"]
        assert sorted(s["dedup_key"] for s in sent) == sorted(t["dedup_key"] for t in triggers)
        assert all(s["team"] == "ml-team-lead" and "budget" in s["text"].lower() for s in sent)
