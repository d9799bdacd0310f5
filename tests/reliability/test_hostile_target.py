"""A hostile target: what the container holds or plants must not steer Remediator's root
writes or leak through what it stores and serves. A real `remediator serve`, a real
container of the app image (its `appuser`), the shipped playbook's own steps.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from docker.models.containers import Container

from tests.harness.docker_engine import Resources
from tests.reliability.conftest import (
    AUTH,
    ServeFactory,
    alert,
    config_yaml,
    wait_for,
    webhook,
)

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = yaml.safe_load((ROOT / "playbooks" / "model_load_failure.yml").read_text())
SLEEPER = ["python", "-c", "import time\ntime.sleep(3600)"]
CANARY = "/etc/remediator-canary"
SECRET = "hunter2-s3cr3t-value"


def shipped_steps(*ids: str) -> str:
    """A playbook made of the shipped playbook's own steps (their `when` dropped: the
    classification is not what is tested), with the shipped params."""
    steps = {step["id"]: step for step in SHIPPED["steps"]}
    picked = [{k: v for k, v in steps[i].items() if k != "when"} for i in ids]
    return yaml.safe_dump({"name": "shipped-steps", "match": {"alertname": "ModelLoadFailure"},
                           "params": SHIPPED["params"], "steps": picked}, sort_keys=False)


def app_box(request: pytest.FixtureRequest, docker_resources: Resources,
            **kwargs: Any) -> Container:
    images: dict[str, str] = request.getfixturevalue("images")
    return docker_resources.run(images["modelserver"], SLEEPER, mem_limit="256m",
                                memswap_limit="256m", **kwargs)


def target_block(container: str) -> str:
    return (f"  - name: app-prod\n    selector: {{service: app-prod}}\n"
            f"    container: {container}\n    base_url: http://127.0.0.1:1\n"
            f"    backup_path: /backup/models\n")


def sh(box: Container, script: str, user: str = "root") -> str:
    result = box.exec_run(["sh", "-c", script], user=user)
    assert result.exit_code == 0, result.output
    return str(result.output.decode().strip())


def finished(rem: Any) -> dict[str, Any]:
    (execution,) = wait_for(lambda: [e for e in rem.items("executions")
                                     if e["state"] == "finished"], 90, "the execution")
    return dict(execution)


def test_a_symlink_planted_by_the_app_user_is_not_followed_by_the_permission_fix(
        serve: ServeFactory, request: pytest.FixtureRequest,
        docker_resources: Resources) -> None:
    box = app_box(request, docker_resources)
    # Root's file outside the model folder, and the app user's trap inside it: a model-named
    # link to that file, beside a real model that lost its permissions.
    sh(box, f"echo root-only > {CANARY} && chmod 600 {CANARY}")
    sh(box, f"ln -sf {CANARY} /app/models/zz_trap.pth && echo w > /app/models/m.pth && "
            "chmod 000 /app/models/m.pth", user="appuser")
    rem = serve(config_yaml(target_block(box.name)),
                {"fix.yml": shipped_steps("fix_ownership", "fix_mode")})
    assert rem.post(webhook(alert())).status_code == 202
    execution = finished(rem)

    assert [s["status"] for s in execution["steps"]] == ["ok", "ok"], execution["steps"]
    # The real model was fixed; the link's target outside the model folder was not touched.
    assert sh(box, "stat -c '%a %U' /app/models/m.pth") == "644 appuser"
    assert sh(box, f"stat -c '%a %U' {CANARY}") == "600 root"
    assert sh(box, "readlink /app/models/zz_trap.pth") == CANARY


def test_an_execution_answer_masks_the_targets_secret_environment(
        serve: ServeFactory, request: pytest.FixtureRequest,
        docker_resources: Resources) -> None:
    box = app_box(request, docker_resources, environment={
        "DB_PASSWORD": SECRET, "API_TOKEN": SECRET,
        "DATABASE_URL": f"postgres://app:{SECRET}@db:5432/models", "MODEL_NAME": "int2"})
    rem = serve(config_yaml(target_block(box.name)), {"look.yml": """
name: look
match: {alertname: ModelLoadFailure}
steps:
  - id: inspect
    phase: diagnose
    action: docker.inspect
  - id: env
    phase: diagnose
    action: docker.exec
    read_only: true
    with: {cmd: [env]}
"""})
    assert rem.post(webhook(alert())).status_code == 202
    execution = finished(rem)
    answer = requests.get(f"{rem.url}/api/v1/executions/{execution['id']}", headers=AUTH,
                          timeout=10)
    assert answer.status_code == 200
    assert SECRET not in answer.text
    steps = {s["id"]: s for s in answer.json()["steps"]}
    env = steps["inspect"]["outputs"]["env"]
    # Names kept (a playbook may ask which variables are set), secret values masked, the
    # rest kept (a rollback restores them).
    assert "DB_PASSWORD=***" in env and "API_TOKEN=***" in env
    assert "DATABASE_URL=postgres://app:***@db:5432/models" in env
    assert "MODEL_NAME=int2" in env
    assert "DB_PASSWORD=***" in steps["env"]["outputs"]["output"]
    # ... and at rest: the store holds no copy of it either.
    time.sleep(0.2)
    assert SECRET.encode() not in rem.db.read_bytes()
    wal = rem.db.with_name(rem.db.name + "-wal")
    assert not wal.exists() or SECRET.encode() not in wal.read_bytes()
