"""Runbook scenario 6, missing dependencies, on a real container through `remediator serve`.

The fault, from outside: a new image without Pillow (the app's image with `pip uninstall
pillow`) is deployed over the app, same settings; the server stays up and reports the
ImportError. The runbook's fix is "rebuild container with dependencies"; Remediator cannot
build, so it runs the last image that worked: docker.recreate with last_known_good: true.
That last-known-good (the healthy container's image id and environment) is written into the
store before `remediator serve` starts, with the snapshot the service takes when an incident
closes (tests/harness/scenarios.py). The runbook escalates nothing for this scenario.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import docker.errors
import pytest

from devstack.demo import WITHOUT_PILLOW
from tests.harness.docker_engine import Resources
from tests.harness.scenarios import alert_payload, scenario_rig

pytestmark = pytest.mark.docker


def test_scenario_6_missing_dependency_rolls_back_to_the_last_known_good_image(
        tmp_path: Path, images: dict[str, str], docker_resources: Resources,
        monkeypatch: pytest.MonkeyPatch) -> None:
    try:
        with scenario_rig(tmp_path, docker_resources, images["modelserver"],
                          "missing-dependency", monkeypatch) as rig:
            good_image = rig.app.attrs["Image"]
            fault_at = rig.inject("missing-dependency")
            assert rig.app.attrs["Config"]["Image"] == WITHOUT_PILLOW

            rig.post_alert(alert_payload("load-failure", fault_at))
            execution = rig.wait_execution()

            assert (execution["outcome"], execution["scenario"]) == (
                "success", "missing_dependency")
            steps = {s["id"]: s for s in execution["steps"]}
            assert "No module named 'PIL'" in steps["classify"]["outputs"]["matched"]
            assert steps["check"]["outputs"]["data"]["missing_modules"] == ["PIL"]
            assert steps["rollback_image"]["status"] == "ok"
            assert all(steps[s]["status"] == "ok" for s in
                       ("health", "model_health", "inference", "metrics")), steps
            rig.assert_healthy_on_the_primary_model()
            assert rig.app.attrs["Image"] == good_image  # the very image, by id

            assert rig.escalations() == []
            assert rig.pagerduty.requests == []
    finally:
        with contextlib.suppress(docker.errors.ImageNotFound, docker.errors.APIError):
            docker_resources.client.images.remove(WITHOUT_PILLOW, force=True)
