"""The playbook's diagnosis is a command of the serving image (issue 18), on a real engine.

`check` runs `modelserver diagnose --json` in the container. Against the image this tree
builds it answers; against an image without the command (an older serving image, built
before it existed, or a plain one with no `modelserver` at all) the run fails with a
message that says what is missing and what to do, and escalates. The images without the
command are built here from the local serving image (never pulled) and removed after.
"""

from __future__ import annotations

import contextlib
import io
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest
import yaml
from docker.models.containers import Container

from remediator.adapters.runtime import build_runtime
from remediator.core.alerts import parse_alert
from remediator.core.config import load_config
from remediator.core.playbook import load_playbook
from remediator.core.results import ExecutionResult, Outcome
from remediator.core.runner import run_playbook
from tests.harness.docker_engine import LABEL, SESSION_ID, Resources

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parents[2]
SLEEPER = ["python", "-c", "import signal, sys, time\n"
           "signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))\ntime.sleep(3600)"]
# An older serving image: `modelserver` is the click group of serve/train/evaluate only.
OLD_CLI = ("printf '#!/opt/venv/bin/python\\nfrom mobile_multimodal.cli_group import group\\n"
           "group()\\n' > /opt/venv/bin/modelserver")
WITHOUT = {
    "older-image": f"RUN {OLD_CLI}",                          # `modelserver`, no `diagnose`
    "no-modelserver": "RUN rm /opt/venv/bin/modelserver",     # no `modelserver` at all
}


@pytest.fixture
def image_without(request: pytest.FixtureRequest, images: dict[str, str],
                  docker_client: docker.DockerClient) -> Iterator[str]:
    """A tiny image FROM the local serving image, without `modelserver diagnose`."""
    tag = f"remediator-test/no-diagnose:{SESSION_ID}-{uuid.uuid4().hex[:6]}"
    dockerfile = (f"FROM {images['modelserver']}\nUSER root\n{WITHOUT[request.param]}\n"
                  f"USER appuser\nLABEL {LABEL}={SESSION_ID}\n")
    docker_client.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=tag, rm=True,
                               pull=False)
    try:
        yield tag
    finally:
        with contextlib.suppress(docker.errors.ImageNotFound, docker.errors.APIError):
            docker_client.images.remove(tag, force=True)


def run_against(box: Container, tmp_path: Path) -> ExecutionResult:
    """playbooks/model_load_failure.yml, for real, on a target that is this container."""
    config = yaml.safe_load((ROOT / "config" / "remediator.yml").read_text())
    config["targets"][0].update(container=box.name, base_url="http://127.0.0.1:1")
    config["prometheus_url"] = "http://127.0.0.1:1"  # down: the playbook carries on
    (tmp_path / "remediator.yml").write_text(yaml.safe_dump(config))
    loaded = load_config(tmp_path / "remediator.yml", env={})
    playbook = load_playbook(ROOT / "playbooks" / "model_load_failure.yml", loaded.targets)
    alert = parse_alert({"status": "firing", "labels": {
        "alertname": "ModelLoadFailure", "service": "app-prod", "instance": "app-prod:8080",
        "job": "app-prod", "severity": "critical"}, "annotations": {},
        "startsAt": "2026-01-01T00:00:00Z"})
    return run_playbook(playbook, alert, loaded.targets[0], build_runtime(loaded))


def step(result: ExecutionResult, step_id: str) -> Any:
    found = result.step(step_id)
    assert found is not None, [s.id for s in result.steps]
    return found


@pytest.mark.parametrize("image_without", list(WITHOUT), indirect=True)
def test_an_image_without_modelserver_diagnose_fails_the_check_and_escalates(
        image_without: str, docker_resources: Resources, tmp_path: Path) -> None:
    box = docker_resources.run(image_without, SLEEPER)
    result = run_against(box, tmp_path)

    check, command = step(result, "check"), step(result, "check_command")
    assert check.status.value == "failed" and check.outputs["exit_code"] in (2, 126, 127)
    assert command.status.value == "failed"
    assert f"the image {image_without} of app-prod has no `modelserver diagnose`" in \
        command.error
    assert "rebuild the serving image" in command.error and "make images" in command.error
    assert result.outcome is Outcome.ESCALATED
    assert [(e.team, e.step_id) for e in result.escalations] == [
        ("ml-team-lead", "check_command")]
    assert result.step("classify") is None  # the run ends there: nothing was changed


def test_the_serving_image_answers_the_check_with_its_report(
        images: dict[str, str], docker_resources: Resources, tmp_path: Path) -> None:
    box = docker_resources.run(images["modelserver"], SLEEPER)  # files there, app not started
    code, out = box.exec_run(["modelserver", "diagnose", "--json"])
    assert code == 0, out
    report = json.loads(out)
    assert report["findings"] == [] and report["missing_modules"] == []
    assert report["primary"]["checksum_ok"] is True and report["backup"]["usable"] is True
    assert report["uid"] == 1000 and report["app"] is None  # as appuser; nothing serves

    result = run_against(box, tmp_path)
    assert step(result, "check").status.value == "ok"
    assert step(result, "check").outputs["data"]["primary"]["path"] == \
        "/app/models/best_model.pth"
    assert step(result, "check_command").status.value == "skipped"
