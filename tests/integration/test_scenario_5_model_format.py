"""Runbook scenario 5, model format/version issues, on a real container through
`remediator serve`.

The fault, from outside: an older release's checkpoint (format 0, what
`torch.save(model.state_dict())` writes) replaces best_model.pth, then the app restarts;
the fallback serves. The investigation exec tells the format by reading the checkpoint's
pickle as a weights-only load does (without importing torch). The runbook's fix:
scripts/convert_model.py --target-version current into best_model_converted.pth, then
"update configuration to use converted model": model_path in /app/config/model.yml, and the
app's POST /model/reload, which reads its config again (no restart, same container). The
runbook escalates nothing for this scenario. The last-known-good is seeded before the server starts
(tests/harness/scenarios.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.harness.docker_engine import Resources
from tests.harness.scenarios import alert_payload, scenario_rig, wait_healthy

pytestmark = pytest.mark.docker


def test_scenario_5_old_format_is_converted_and_served(
        tmp_path: Path, images: dict[str, str], docker_resources: Resources,
        monkeypatch: pytest.MonkeyPatch) -> None:
    with scenario_rig(tmp_path, docker_resources, images["modelserver"], "old-format",
                      monkeypatch) as rig:
        fault_at = rig.inject("old-format")
        assert rig.get("/model/health")[1]["fallback_active"] is True
        started_at = rig.app.attrs["State"]["StartedAt"]

        rig.post_alert(alert_payload("load-failure", fault_at))
        execution = rig.wait_execution()

        assert (execution["outcome"], execution["scenario"]) == ("success", "model_format")
        steps = {s["id"]: s for s in execution["steps"]}
        assert steps["check"]["outputs"]["data"]["primary"]["format_version"] == 0
        assert "(format 0) -> /app/models/best_model_converted.pth (format 2)" in \
            steps["convert_model"]["outputs"]["output"]
        assert steps["use_converted"]["status"] == "ok"
        assert all(steps[s]["status"] == "ok" for s in
                   ("health", "model_health", "inference", "metrics")), steps
        rig.assert_healthy_on_the_primary_model()
        _, model = rig.get("/model/health")
        assert model["model_path"] == "/app/models/best_model_converted.pth"
        assert "POST /model/reload: 202" in steps["use_converted"]["outputs"]["output"]
        assert steps["use_converted_env"]["status"] == "skipped"
        config = rig.app.exec_run(["cat", "/app/config/model.yml"]).output.decode()
        assert "model_path: best_model_converted.pth  " in config  # its comment kept
        assert rig.app.attrs["State"]["StartedAt"] == started_at  # reloaded, not restarted
        # The change outlives a restart: the config file is the app's, not a request's.
        rig.app.restart(timeout=10)
        wait_healthy(rig.app_url)
        rig.assert_healthy_on_the_primary_model()

        assert rig.escalations() == []
        assert rig.pagerduty.requests == []
