"""Runbook scenario 2, out of memory during load, on a real container through
`remediator serve`.

The fault, from outside: the container is redeployed with a 120 MiB memory limit (stop,
docker update, start: Docker cannot lower a running container's limit below its use), so
the kernel OOM-kills every load and the restart policy loops. The alert is posted once
Docker shows OOMKilled, as Prometheus would fire it after its `for:`. The runbook's fix:
raise the memory limit, here to the target's bound (max_memory 4g), then restart. It
escalates memory trouble to the infrastructure team as hardware-related
(config/escalation.yml: infra-hardware-related), and nothing else. The last-known-good is
seeded before the server starts (tests/harness/scenarios.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.harness.docker_engine import Resources
from tests.harness.scenarios import alert_payload, scenario_rig

pytestmark = pytest.mark.docker


def test_scenario_2_out_of_memory_raises_the_limit_to_the_targets_bound(
        tmp_path: Path, images: dict[str, str], docker_resources: Resources,
        monkeypatch: pytest.MonkeyPatch) -> None:
    with scenario_rig(tmp_path, docker_resources, images["modelserver"], "oom",
                      monkeypatch) as rig:
        fault_at = rig.inject("oom")
        rig.post_alert(alert_payload("load-failure", fault_at))
        execution = rig.wait_execution()

        assert (execution["outcome"], execution["scenario"]) == ("success", "out_of_memory")
        steps = {s["id"]: s for s in execution["steps"]}
        assert steps["inspect"]["outputs"]["oom_killed"] is True
        assert steps["inspect"]["outputs"]["memory_limit"] == 120 * 2**20
        assert steps["classify"]["outputs"]["matched"] == "oom_killed=True"
        assert steps["raise_memory"]["outputs"]["memory"] == 4 * 2**30
        assert steps["raise_memory"]["outputs"]["memory_reservation"] == 2 * 2**30
        assert steps["cuda_alloc_conf"]["status"] == "skipped"  # no GPU on this host
        assert all(steps[s]["status"] == "ok" for s in
                   ("restart", "health", "model_health", "inference", "caption", "metrics")
                   ), steps
        rig.assert_healthy_on_the_primary_model()
        host = rig.app.attrs["HostConfig"]
        assert (host["Memory"], host["MemorySwap"]) == (4 * 2**30, 4 * 2**30)
        # The runbook's mem_reservation: 2g beside the limit (issue 21).
        assert host["MemoryReservation"] == 2 * 2**30

        assert rig.escalations() == [("infrastructure", "notify", "infra-hardware-related")]
        assert rig.pagerduty.requests == []
