"""Runbook scenario 7, configuration issues, on a real container through `remediator serve`.

The fault, from outside: /app/config/model.yml is edited with a value the app refuses
(load_timeout: soon), then the app restarts; nothing loads. The runbook's fix: check and
validate the config (the investigation exec's yaml.safe_load and value checks), fix the
file, restart. "Fix" here is the last-known-good config: the file as it was when the target
was last healthy, recorded with the last-known-good (the target's config_files) and written
back with docker.put_file. That record is written into the store before `remediator serve`
starts, with the snapshot the service takes when an incident closes
(tests/harness/scenarios.py). The runbook escalates nothing for this scenario.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.harness.docker_engine import ROOT, Resources
from tests.harness.scenarios import alert_payload, scenario_rig

pytestmark = pytest.mark.docker


def test_scenario_7_invalid_config_is_restored_from_the_last_known_good(
        tmp_path: Path, images: dict[str, str], docker_resources: Resources,
        monkeypatch: pytest.MonkeyPatch) -> None:
    with scenario_rig(tmp_path, docker_resources, images["modelserver"], "invalid-config",
                      monkeypatch) as rig:
        fault_at = rig.inject("invalid-config")
        rig.post_alert(alert_payload("load-failure", fault_at))
        execution = rig.wait_execution()

        assert (execution["outcome"], execution["scenario"]) == ("success", "configuration")
        steps = {s["id"]: s for s in execution["steps"]}
        needle = "load_timeout: expected a duration like 30s or 2m, got 'soon'"
        assert f"/app/config/model.yml: {needle}" in steps["classify"]["outputs"]["matched"]
        assert needle in steps["check"]["outputs"]["data"]["config"]["error"]
        assert steps["restore_config"]["status"] == "ok"
        assert all(steps[s]["status"] == "ok" for s in
                   ("restart", "health", "model_health", "inference", "metrics")), steps
        rig.assert_healthy_on_the_primary_model()
        restored = rig.app.exec_run(["cat", "/app/config/model.yml"]).output.decode()
        assert restored == (ROOT / "config" / "model.yml").read_text()
        owner = rig.app.exec_run(["stat", "-c", "%U %a", "/app/config/model.yml"]).output
        assert owner.decode().strip() == "appuser 644"

        assert rig.escalations() == []
        assert rig.pagerduty.requests == []
