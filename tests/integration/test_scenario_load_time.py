"""ModelLoadTime on a real container through `remediator serve`.

The fault, from outside: the container's CPU quota drops to a tenth of a CPU and the app
restarts, so the load (mostly importing torch) crawls. The alert is a ModelLoadTime payload
built like the captured ModelLoadFailure fixture, as alerts.yml fires it (warning). The
playbook finds the quota below the target's min_cpus and raises it to max_cpus with docker
update: the running load speeds up, no restart. The runbook escalates nothing for this. The
last-known-good is seeded before the server starts (tests/harness/scenarios.py).
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
        assert steps["inspect"]["outputs"]["cpus"] == pytest.approx(0.1)
        assert steps["give_cpu"]["outputs"]["cpus"] == pytest.approx(2.0)
        assert steps["restart"]["status"] == "skipped"
        assert steps["health"]["status"] == "ok"
        rig.assert_healthy_on_the_primary_model()
        assert rig.app.attrs["State"]["StartedAt"] == started_at  # the same load finished

        assert rig.escalations() == []
        assert rig.pagerduty.requests == []
