"""The walking skeleton: a deleted model restored without a human, through the real loop.

Real Docker, real Prometheus and Alertmanager with the shipped rules and routing (only
intervals, `for:`, addresses and ports changed), `remediator serve` as a subprocess.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from devstack.demo import inject_fault
from tests.harness.docker_engine import Resources
from tests.harness.stack import loop, wait

pytestmark = [pytest.mark.docker, pytest.mark.e2e]


def test_deleted_model_is_restored_and_the_alert_resolves(
        tmp_path: Path, images: dict[str, str], docker_resources: Resources) -> None:
    with loop(tmp_path, docker_resources, images["modelserver"]) as stack:
        wait(lambda: stack.alerts("ModelLoadFailure") == [] and stack.health(), 30,
             "a quiet start")
        fault_at = time.time()
        inject_fault(docker_resources.client, stack.app.name, "missing-file")

        firing = wait(lambda: [a for a in stack.alerts("ModelLoadFailure")
                               if a["state"] == "firing"], 90, "ModelLoadFailure to fire")
        assert firing[0]["labels"]["service"] == "app-prod"
        assert firing[0]["labels"]["instance"] == "app-prod:8080"

        def finished() -> dict | None:  # type: ignore[type-arg]
            items = stack.api("/api/v1/executions")["items"]
            return next((e for e in items if e["state"] == "finished"), None)

        execution = wait(finished, 180, "the execution to finish")
        healthy_at = time.time()
        assert execution["outcome"] == "success", execution
        assert execution["scenario"] == "file_missing_or_corrupted"
        steps = {s["id"]: s["status"] for s in execution["steps"]}
        assert steps["restore_model"] == "ok" and steps["restart"] == "ok"
        assert steps["health"] == "ok" and steps["inference"] == "ok"
        # Read once, right after the fix; a just-restarted app may answer slowly under load.
        assert stack.health(timeout=10) == {"status": "healthy", "model_loaded": True}

        incident = stack.api("/api/v1/incidents")["items"][0]
        assert incident["labels"]["alertname"] == "ModelLoadFailure"
        wait(lambda: stack.alerts("ModelLoadFailure") == [], 60, "the alert to resolve")
        wait(lambda: stack.api("/api/v1/incidents")["items"][0]["status"] == "resolved", 60,
             "Alertmanager's resolved notice")
        print(f"\nfault-to-healthy: {healthy_at - fault_at:.1f}s "
              f"(execution {execution['id']}: {len(execution['steps'])} steps)")
