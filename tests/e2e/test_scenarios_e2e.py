"""Runbook scenarios through the whole loop: the fault shows in the app's metrics, Prometheus
fires ModelLoadFailure with the shipped rules, Alertmanager routes it with the shipped
routing, `remediator serve` fixes it, and the alert resolves by itself.

Real Docker (the app in app-prod's shape, under a test name), real Prometheus and
Alertmanager processes with only intervals, `for:`, addresses and ports changed
(tests/harness/stack.py). Scenario 1 (a missing file) is tests/e2e/test_walking_skeleton.py;
these are scenario 4 (permissions) and scenario 2 (out of memory).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from devstack.demo import inject_fault
from tests.harness.docker_engine import Resources
from tests.harness.stack import Loop, loop, wait

pytestmark = [pytest.mark.docker, pytest.mark.e2e]

HEALTHY = {"status": "healthy", "model_loaded": True}


def fix_through_the_loop(stack: Loop, fault: str) -> tuple[dict[str, Any], float]:
    """Inject `fault` into a quiet stack; return the finished execution and fault→healthy."""
    wait(lambda: stack.alerts("ModelLoadFailure") == [] and stack.health() == HEALTHY, 60,
         "a quiet start")
    fault_at = time.time()
    inject_fault(stack.app.client, str(stack.app.name), fault)
    firing = wait(lambda: [a for a in stack.alerts("ModelLoadFailure")
                           if a["state"] == "firing"], 120, "ModelLoadFailure to fire")
    assert (firing[0]["labels"]["service"], firing[0]["labels"]["instance"]) == (
        "app-prod", "app-prod:8080")

    def finished() -> dict[str, Any] | None:
        items = stack.api("/api/v1/executions")["items"]
        return next((e for e in items if e["state"] == "finished"), None)

    execution: dict[str, Any] = wait(finished, 180, "the execution to finish")
    wait(lambda: stack.health() == HEALTHY, 60, "the app to be healthy")
    return execution, time.time() - fault_at


def resolves_by_itself(stack: Loop) -> None:
    """Prometheus stops firing, Alertmanager sends the resolved notice, the incident closes
    its firing state: no human touched anything."""
    wait(lambda: stack.alerts("ModelLoadFailure") == [], 90, "the alert to resolve")
    wait(lambda: stack.api("/api/v1/incidents")["items"][0]["status"] == "resolved", 60,
         "Alertmanager's resolved notice")
    assert len(stack.api("/api/v1/executions")["items"]) == 1  # one fix, no loop


def test_scenario_4_permissions_fixed_through_prometheus_and_alertmanager(
        tmp_path: Path, images: dict[str, str], docker_resources: Resources) -> None:
    with loop(tmp_path, docker_resources, images["modelserver"]) as stack:
        execution, took = fix_through_the_loop(stack, "permissions")

        assert (execution["outcome"], execution["scenario"]) == ("success", "permission_denied")
        steps = {s["id"]: s["status"] for s in execution["steps"]}
        assert {steps[s] for s in ("fix_ownership", "fix_mode", "restart", "health",
                                   "model_health", "inference", "metrics")} == {"ok"}
        resolves_by_itself(stack)
        print(f"\nscenario 4 fault-to-healthy through the loop: {took:.1f}s")


def test_scenario_2_out_of_memory_fixed_through_prometheus_and_alertmanager(
        tmp_path: Path, images: dict[str, str], docker_resources: Resources) -> None:
    with loop(tmp_path, docker_resources, images["modelserver"]) as stack:
        execution, took = fix_through_the_loop(stack, "oom")

        assert (execution["outcome"], execution["scenario"]) == ("success", "out_of_memory")
        steps = {s["id"]: s for s in execution["steps"]}
        assert steps["raise_memory"]["outputs"]["memory"] == 4 * 2**30
        assert steps["restart"]["status"] == steps["health"]["status"] == "ok"
        stack.app.reload()
        assert stack.app.attrs["HostConfig"]["Memory"] == 4 * 2**30
        resolves_by_itself(stack)
        print(f"\nscenario 2 fault-to-healthy through the loop: {took:.1f}s")
