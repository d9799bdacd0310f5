"""`make up` after a demo: the kept model volumes may hold what the demo broke.

`up` creates app-prod on the kept volumes; when what they hold does not load, it recreates
them from the image and comes up healthy. A container that is already there is not
touched: `up` fails saying why. Runs scripts/stack.py's own code on a test-named app.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import docker
import docker.errors
import pytest
import requests

from devstack.demo import inject_fault
from devstack.stack import AppSpec
from tests.harness.docker_engine import SESSION_ID
from tests.harness.processes import free_port
from tests.harness.stack import load_stack_script

pytestmark = pytest.mark.docker


@pytest.fixture
def app_spec(images: dict[str, str], docker_client: docker.DockerClient) -> Iterator[AppSpec]:
    spec = AppSpec(name=f"rt-up-{SESSION_ID}", image=images["modelserver"], port=free_port(),
                   models_volume=f"rt-up-models-{SESSION_ID}",
                   backup_volume=f"rt-up-backup-{SESSION_ID}")
    try:
        yield spec
    finally:
        with contextlib.suppress(docker.errors.NotFound):
            docker_client.containers.get(spec.name).remove(force=True)
        for name in (spec.models_volume, spec.backup_volume):
            with contextlib.suppress(docker.errors.NotFound):
                docker_client.volumes.get(name).remove(force=True)


def health(spec: AppSpec) -> dict[str, object]:
    return dict(requests.get(f"http://127.0.0.1:{spec.port}/health", timeout=10).json())


def test_up_after_a_demo_broke_the_kept_model_volume_recreates_it_and_comes_up_healthy(
        app_spec: AppSpec, docker_client: docker.DockerClient,
        capsys: pytest.CaptureFixture[str]) -> None:
    stack = load_stack_script()
    stack.start_app(docker_client, app_spec)
    assert health(app_spec) == {"status": "healthy", "model_loaded": True}

    # A demo's fault: an older release's checkpoint in the model volume (the app restarts
    # on it and serves the fallback).
    inject_fault(docker_client, app_spec.name, "old-format")
    broken = stack.settled_model_health(app_spec, 120)
    assert broken["state"] == "DEGRADED" and "ModelFormatTooOld" in str(broken["reason"])
    assert broken["checksum_ok"] is False  # not the shipped file

    # The container is still there: `up` leaves it alone and says why.
    with pytest.raises(stack.StackError, match=r"is DEGRADED: ModelFormatTooOld.*make clean"):
        stack.start_app(docker_client, app_spec)
    assert stack.settled_model_health(app_spec, 30)["checksum_ok"] is False  # not reset

    # `make down` removes the container and keeps the volumes; the next `up` recreates them.
    docker_client.containers.get(app_spec.name).remove(force=True)
    capsys.readouterr()
    stack.start_app(docker_client, app_spec)
    said = capsys.readouterr().out
    assert "DEGRADED: ModelFormatTooOld" in said
    assert f"recreating {app_spec.models_volume} and {app_spec.backup_volume}" in said
    assert health(app_spec) == {"status": "healthy", "model_loaded": True}  # the primary
