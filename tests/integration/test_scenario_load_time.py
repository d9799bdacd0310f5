"""ModelLoadTime on a real container through `remediator serve`.

The fault, from outside: the demo measures the CPU time the load needs on this machine,
restarts the app and, once it is loading, sets its CPU quota to the share that makes that
work take 66 s, so the load crawls on a fast machine and a slow one alike. The alert is a
ModelLoadTime payload built like the captured ModelLoadFailure fixture, as alerts.yml fires
it (warning). The playbook finds the quota below the target's min_cpus and raises it to
max_cpus with docker update: the running load speeds up, no restart. The runbook escalates
nothing for this. The last-known-good is seeded before the server starts
(tests/harness/scenarios.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.harness.docker_engine import Resources
from tests.harness.scenarios import alert_payload, scenario_rig

pytestmark = pytest.mark.docker


def test_a_load_starved_of_cpu_gets_its_cpus_back_and_finishes(
        tmp_path: Path, images: dict[str, str], docker_resources: Resources,
        monkeypatch: pytest.MonkeyPatch) -> None:
    with scenario_rig(tmp_path, docker_resources, images["modelserver"], "slow-load",
                      monkeypatch) as rig:
        fault_at = rig.inject("slow-load")
        started_at = rig.app.attrs["State"]["StartedAt"]

        rig.post_alert(alert_payload("load-time", fault_at))
        execution = rig.wait_execution()

        assert (execution["playbook"], execution["outcome"], execution["scenario"]) == (
            "model-load-time", "success", "cpu_starved")
        steps = {s["id"]: s for s in execution["steps"]}
        assert 0.001 <= steps["inspect"]["outputs"]["cpus"] <= 0.25  # below min_cpus 0.5
        assert steps["give_cpu"]["outputs"]["cpus"] == pytest.approx(2.0)
        assert steps["restart"]["status"] == "skipped"
        assert steps["health"]["status"] == "ok"
        rig.assert_healthy_on_the_primary_model()
        assert rig.app.attrs["State"]["StartedAt"] == started_at  # the same load finished

        assert rig.escalations() == []
        assert rig.pagerduty.requests == []
