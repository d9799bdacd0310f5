"""Runbook scenario 3, CUDA/GPU issues, on a real container through `remediator serve`.

The fault, from outside: config/model.yml asks for `device: cuda` on a host without a GPU,
then the app restarts; neither model loads. Here the config lives on the host (a bind mount
of /app/config), so it survives the container being recreated: the runbook's fix, forcing
CPU with CUDA_VISIBLE_DEVICES="" (a recreate, since a restart keeps the environment), is
what makes it healthy, not a fresh copy of the image's config. The runbook escalates GPU
trouble to the infrastructure team as hardware-related (config/escalation.yml:
infra-hardware-related), and nothing else. The last-known-good is seeded before the server
starts (tests/harness/scenarios.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.harness.docker_engine import Resources
from tests.harness.scenarios import alert_payload, scenario_rig

pytestmark = pytest.mark.docker


def test_scenario_3_cuda_without_a_gpu_is_forced_to_cpu(
        tmp_path: Path, images: dict[str, str], docker_resources: Resources,
        monkeypatch: pytest.MonkeyPatch) -> None:
    with scenario_rig(tmp_path, docker_resources, images["modelserver"], "cuda", monkeypatch,
                      config_on_host=True) as rig:
        before = rig.app.id
        fault_at = rig.inject("cuda")
        rig.post_alert(alert_payload("load-failure", fault_at))
        execution = rig.wait_execution()

        assert (execution["outcome"], execution["scenario"]) == ("success", "cuda")
        steps = {s["id"]: s for s in execution["steps"]}
        assert "CUDA requested" in steps["classify"]["outputs"]["matched"]
        assert steps["check"]["outputs"]["data"]["findings"] == [
            "cuda: the config asks for device cuda but this container sees no GPU "
            "(no /dev/nvidia*)"]
        assert steps["force_cpu"]["status"] == "ok"
        assert all(steps[s]["status"] == "ok" for s in
                   ("health", "model_health", "inference", "metrics")), steps
        rig.assert_healthy_on_the_primary_model()
        assert rig.get("/model/health")[1]["device"] == "cpu"
        assert rig.app.id != before and "CUDA_VISIBLE_DEVICES=" in rig.app.attrs["Config"]["Env"]
        assert "device: cuda" in (tmp_path / "app-config" / "model.yml").read_text()

        assert rig.escalations() == [("infrastructure", "notify", "infra-hardware-related")]
        assert rig.pagerduty.requests == []
