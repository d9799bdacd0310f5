"""Runbook scenario 4, permission issues, on a real container through `remediator serve`.

The fault, from outside: the primary model loses every permission bit and the fallback goes
to root with mode 600 (a root-run copy), then the app restarts and can load neither. The
runbook's fix: chown -R appuser:appuser /app/models/, chmod 644 the model files, restart.
The runbook escalates persistent storage issues to the infrastructure team
(config/escalation.yml: infra-storage-problem), and nothing else here. The last-known-good
is seeded before the server starts (see tests/harness/scenarios.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.harness.docker_engine import Resources
from tests.harness.scenarios import alert_payload, scenario_rig

pytestmark = pytest.mark.docker


def test_scenario_4_permission_denied_is_fixed_by_chown_and_chmod(
        tmp_path: Path, images: dict[str, str], docker_resources: Resources,
        monkeypatch: pytest.MonkeyPatch) -> None:
    with scenario_rig(tmp_path, docker_resources, images["modelserver"], "permissions",
                      monkeypatch) as rig:
        fault_at = rig.inject("permissions")
        assert rig.get("/health")[0] == 503  # neither model loads: nothing serves

        rig.post_alert(alert_payload("load-failure", fault_at))
        execution = rig.wait_execution()

        assert (execution["outcome"], execution["scenario"]) == ("success", "permission_denied")
        steps = {s["id"]: s for s in execution["steps"]}
        assert "PermissionError" in steps["classify"]["outputs"]["matched"]  # the app's reason
        findings = steps["check"]["outputs"]["data"]["findings"]  # the investigation exec's
        assert findings == [
            "permission_denied: primary model /app/models/best_model.pth is not readable by uid "
            "1000 (mode 0000, owner 1000:1000)",
            "permission_denied: fallback model /app/models/int2_quantized.pth is not readable by "
            "uid 1000 (mode 0600, owner 0:0)"]
        assert {k: steps[k]["status"] for k in ("fix_ownership", "fix_mode", "restart", "health",
                                                 "model_health", "inference", "metrics")} == \
            dict.fromkeys(("fix_ownership", "fix_mode", "restart", "health", "model_health",
                           "inference", "metrics"), "ok")
        rig.assert_healthy_on_the_primary_model()
        modes = rig.app.exec_run(["stat", "-c", "%a %U", "/app/models/best_model.pth",
                                  "/app/models/int2_quantized.pth"]).output.decode().split("\n")
        assert modes[:2] == ["644 appuser", "644 appuser"]

        assert rig.escalations() == [("infrastructure", "notify", "infra-storage-problem")]
        assert rig.pagerduty.requests == []
