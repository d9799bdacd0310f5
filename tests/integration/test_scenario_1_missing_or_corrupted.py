"""Runbook scenario 1, model file missing or corrupted, on a real container through
`remediator serve`.

Faults, from outside: the primary model deleted; or its bytes corrupted together with the
backup's. The runbook's fix: restore from /backup/models (here only after the backup
matches the manifest's sha256), else download a fresh copy with its checksum checked
(scripts/download_models.py --force, from the model store the image ships); restart. It
pages the emergency team when data corruption is suspected (the backup is bad too;
config/escalation.yml: emergency-data-corruption-suspected), and escalates nothing else
here. The last-known-good is seeded before the server starts (tests/harness/scenarios.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.harness.docker_engine import Resources
from tests.harness.scenarios import alert_payload, scenario_rig

pytestmark = pytest.mark.docker

VALIDATED = ("restart", "health", "model_health", "inference", "caption", "metrics")


def test_scenario_1_missing_file_is_restored_from_the_backup(
        tmp_path: Path, images: dict[str, str], docker_resources: Resources,
        monkeypatch: pytest.MonkeyPatch) -> None:
    with scenario_rig(tmp_path, docker_resources, images["modelserver"], "missing-file",
                      monkeypatch) as rig:
        fault_at = rig.inject("missing-file")
        assert rig.get("/model/health")[1]["fallback_active"] is True  # degraded, not fixed

        rig.post_alert(alert_payload("load-failure", fault_at))
        execution = rig.wait_execution()

        assert (execution["outcome"], execution["scenario"]) == (
            "success", "file_missing_or_corrupted")
        steps = {s["id"]: s for s in execution["steps"]}
        assert steps["check"]["outputs"]["data"]["findings"] == [
            "file_missing_or_corrupted: primary model /app/models/best_model.pth does not exist"]
        assert steps["verify_model"]["status"] == "ok"  # the backup matches the manifest
        assert steps["restore_model"]["status"] == "ok"
        assert steps["download_model"]["status"] == "skipped"
        assert all(steps[step]["status"] == "ok" for step in VALIDATED), steps
        rig.assert_healthy_on_the_primary_model()
        assert rig.get("/model/health")[1]["checksum_ok"] is True

        assert rig.escalations() == []
        assert rig.pagerduty.requests == []


def test_scenario_1_a_missing_fallback_is_installed_by_download_models_from_the_image(
        tmp_path: Path, images: dict[str, str], docker_resources: Resources,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 21: the fallback gone too, from the models and the backup: the runbook's
    `download_models.py --model int2_quantized --force` installs it from the image's own
    model store (the container has no internet)."""
    with scenario_rig(tmp_path, docker_resources, images["modelserver"], "missing-file",
                      monkeypatch) as rig:
        gone = rig.app.exec_run(["rm", "-f", "/app/models/int2_quantized.pth",
                                 "/backup/models/int2_quantized.pth"], user="root")
        assert gone.exit_code == 0, gone.output
        fault_at = rig.inject("missing-file")
        rig.post_alert(alert_payload("load-failure", fault_at))
        execution = rig.wait_execution()

        assert (execution["outcome"], execution["scenario"]) == (
            "success", "file_missing_or_corrupted")
        steps = {s["id"]: s for s in execution["steps"]}
        assert steps["restore_model"]["status"] == "ok"
        assert steps["download_fallback"]["status"] == "ok", steps["download_fallback"]
        assert "int2_quantized" in steps["download_fallback"]["outputs"]["output"]
        assert all(steps[step]["status"] == "ok" for step in VALIDATED), steps
        rig.assert_healthy_on_the_primary_model()
        assert rig.get("/model/health")[1]["fallback_available"] is True


def test_scenario_1_corrupted_backup_pages_emergency_and_downloads_a_good_copy(
        tmp_path: Path, images: dict[str, str], docker_resources: Resources,
        monkeypatch: pytest.MonkeyPatch) -> None:
    with scenario_rig(tmp_path, docker_resources, images["modelserver"], "corrupted-backup",
                      monkeypatch) as rig:
        fault_at = rig.inject("corrupted-backup")
        rig.post_alert(alert_payload("load-failure", fault_at))
        execution = rig.wait_execution()

        assert (execution["outcome"], execution["scenario"]) == (
            "success", "file_missing_or_corrupted")
        steps = {s["id"]: s for s in execution["steps"]}
        report = steps["check"]["outputs"]["data"]
        assert "fails its CRC" in report["primary"]["error"]  # zip CRCs, before any torch.load
        assert report["backup"]["checksum_ok"] is False
        assert steps["verify_model"]["status"] == "failed"
        assert steps["verify_model"]["error"].startswith("Data corruption suspected")
        assert steps["restore_model"]["status"] == "skipped"  # never copy a bad backup
        assert steps["download_model"]["status"] == "ok"
        download = steps["download_model"]["outputs"]["output"]
        assert "installed /app/models/best_model.pth" in download
        assert all(steps[step]["status"] == "ok" for step in VALIDATED), steps
        rig.assert_healthy_on_the_primary_model()

        assert rig.escalations() == [("emergency", "page", "emergency-data-corruption-suspected")]
        (page,) = rig.pagerduty.events
        assert (page["event_action"], page["payload"]["severity"]) == ("trigger", "critical")
        assert "Data corruption suspected" in page["payload"]["summary"] + str(
            page["payload"].get("custom_details"))
