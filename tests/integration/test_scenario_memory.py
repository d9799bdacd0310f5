"""ModelMemoryUsage on a real container through `remediator serve`.

The fault: the serving process holds ever more memory, up to 90% of its 3g limit (the
app's MODEL_DEBUG_FAULTS=1 switch, set on this container from the start, then POST
/debug/grow from outside: the one runbook fault that needs the process's help). The alert
is the app-prod alert of the captured grouped ModelMemoryUsage fixture. The playbook sees
the container near its limit and raises the limit to the target's max_memory, live, with no
restart (the runbook's scenario 2 "Increase memory limits"). The runbook escalates nothing
for memory that was made room for. The last-known-good is seeded before the server starts
(tests/harness/scenarios.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.harness.docker_engine import Resources
from tests.harness.scenarios import alert_payload, scenario_rig

pytestmark = pytest.mark.docker


def test_memory_near_the_limit_gets_a_higher_limit_without_a_restart(
        tmp_path: Path, images: dict[str, str], docker_resources: Resources,
        monkeypatch: pytest.MonkeyPatch) -> None:
    with scenario_rig(tmp_path, docker_resources, images["modelserver"], "memory-growth",
                      monkeypatch, environment={"MODEL_DEBUG_FAULTS": "1"}) as rig:
        fault_at = rig.inject("memory-growth")
        started_at = rig.app.attrs["State"]["StartedAt"]

        rig.post_alert(alert_payload("memory", fault_at))
        execution = rig.wait_execution()

        assert (execution["playbook"], execution["outcome"], execution["scenario"]) == (
            "model-memory-usage", "success", "near_limit")
        steps = {s["id"]: s for s in execution["steps"]}
        assert steps["stats"]["outputs"]["memory_percent"] >= 85
        assert steps["raise_limit"]["outputs"]["memory"] == 4 * 2**30
        assert steps["has_headroom"]["status"] == "ok"
        rig.assert_healthy_on_the_primary_model()
        assert rig.app.attrs["State"]["StartedAt"] == started_at  # no restart
        assert rig.app.attrs["HostConfig"]["Memory"] == 4 * 2**30

        assert rig.escalations() == []
        assert rig.pagerduty.requests == []
