"""Detection at the shipped speed: the monitoring configs exactly as shipped (5 s scrapes and
evaluation for app-prod, ModelLoadFailure's two speeds, the remediation route's 1 s
group_wait), only addresses and ports changed.

- a planned `docker restart` of a healthy app starts nothing and tells no one;
- every ModelLoadFailure scenario is repaired through the loop with the shipped monitoring,
  fault → firing and fault → healthy printed (`pytest -s`). Speed is not asserted here (these
  machines are shared and noisy): `make demo-all` prints the figures for the README.

Real Docker, real Prometheus, Alertmanager and `remediator serve`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from devstack.demo import inject_fault
from devstack.stack import Timings
from tests.harness.docker_engine import Resources
from tests.harness.stack import Loop, loop, wait

pytestmark = [pytest.mark.docker, pytest.mark.e2e]

SHIPPED = Timings()
HEALTHY = {"status": "healthy", "model_loaded": True}
WATCH_S = 120.0


def quiet_start(stack: Loop) -> None:
    wait(lambda: stack.alerts("ModelLoadFailure") == [] and stack.health() == HEALTHY, 90,
         "a quiet start")


def test_planned_restart_starts_no_execution_and_sends_no_notification(
        tmp_path: Path, images: dict[str, str], docker_resources: Resources) -> None:
    with loop(tmp_path, docker_resources, images["modelserver"], SHIPPED) as stack:
        quiet_start(stack)
        time.sleep(10)  # a few healthy scrapes before the restart, as in production
        began = time.monotonic()
        stack.app.restart(timeout=10)
        wait(lambda: stack.health() == HEALTHY, 60, "the app to serve again", interval=0.2)
        back_in = time.monotonic() - began
        assert back_in <= 20, f"the restart took {back_in:.1f}s: not the case under test"

        seen: set[str] = set()
        while time.monotonic() - began < WATCH_S:
            seen |= {a["state"] for a in stack.alerts("ModelLoadFailure")}
            assert "firing" not in seen, "ModelLoadFailure fired for a planned restart"
            time.sleep(1)
        assert stack.api("/api/v1/incidents")["items"] == []
        assert stack.api("/api/v1/executions")["items"] == []
        assert stack.api("/api/v1/notifications")["items"] == []
        print(f"\nplanned restart: serving again in {back_in:.1f}s; "
              f"ModelLoadFailure states seen in {WATCH_S:.0f}s: {sorted(seen) or 'none'}")


SCENARIOS = [
    ("missing-file", "file_missing_or_corrupted"),
    ("corrupted-file", "file_missing_or_corrupted"),
    ("oom", "out_of_memory"),
    ("cuda", "cuda"),
    ("permissions", "permission_denied"),
    ("old-format", "model_format"),
    ("invalid-config", "configuration"),
]
"""Each runbook scenario ModelLoadFailure fixes (6, the missing dependency, deploys an
image: tests/integration/test_scenario_6_missing_dependency.py)."""


@pytest.mark.parametrize(("fault", "scenario"), SCENARIOS)
def test_load_failure_is_repaired_through_the_shipped_monitoring(
        fault: str, scenario: str, tmp_path: Path, images: dict[str, str],
        docker_resources: Resources) -> None:
    with loop(tmp_path, docker_resources, images["modelserver"], SHIPPED) as stack:
        quiet_start(stack)
        fault_at = time.monotonic()
        inject_fault(docker_resources.client, str(stack.app.name), fault)
        fired_at: float | None = None

        def healthy_after_a_fix() -> dict[str, Any] | None:
            nonlocal fired_at
            if fired_at is None and any(a["state"] == "firing"
                                        for a in stack.alerts("ModelLoadFailure")):
                fired_at = time.monotonic()
            items = stack.api("/api/v1/executions")["items"]
            done = next((e for e in items if e["state"] == "finished"), None)
            return done if done and stack.health() == HEALTHY else None

        execution = wait(healthy_after_a_fix, 180, "a fix and a healthy app", interval=0.25)
        took = time.monotonic() - fault_at
        assert (execution["outcome"], execution["scenario"]) == ("success", scenario)
        fired = f"{fired_at - fault_at:.1f}s" if fired_at else "?"
        print(f"\n{fault}: fault→firing {fired}, fault→healthy {took:.1f}s")
        assert fired_at is not None, f"{fault}: fixed, but ModelLoadFailure was never seen firing"
