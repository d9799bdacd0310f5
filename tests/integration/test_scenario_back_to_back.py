"""`make demo SCENARIO=old-format`, then `make demo SCENARIO=missing-dependency`, on one
container and one Remediator: both are repaired (issue 14, item 4).

Between the two, `make demo` finds the container serving the converted model (the first
fix) and starts over from the image: container and model volumes anew (scripts/stack.py
renew_app, the very function), then records that container as last-known-good, as `make
demo` does. The second fault deploys an image without Pillow over it; the rollback must
bring back the image that served on these volumes, not the first fix's config, whose
model_path names best_model_converted.pth, a file the fresh volume does not hold.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from urllib.parse import urlparse

import docker.errors
import pytest

from devstack.demo import WITHOUT_PILLOW
from devstack.stack import AppSpec, record_known_good
from tests.harness.docker_engine import SESSION_ID, Resources
from tests.harness.scenarios import alert_payload, scenario_rig
from tests.harness.stack import load_stack_script

pytestmark = pytest.mark.docker


def test_old_format_then_missing_dependency_are_both_repaired(
        tmp_path: Path, images: dict[str, str], docker_resources: Resources,
        monkeypatch: pytest.MonkeyPatch) -> None:
    client = docker_resources.client
    volumes: list[str] = []
    try:
        with scenario_rig(tmp_path, docker_resources, images["modelserver"], "back-to-back",
                          monkeypatch) as rig:
            rig.post_alert(alert_payload("load-failure", rig.inject("old-format")))
            first = rig.wait_execution()
            assert (first["outcome"], first["scenario"]) == ("success", "model_format")
            assert rig.get("/model/health")[1]["model_path"].endswith("_converted.pth")

            # make demo: app-prod is not as shipped; recreate it and its volumes, record it.
            volumes = [m["Name"] for m in rig.app.attrs["Mounts"] if m["Type"] == "volume"]
            mounts = {m["Destination"]: m["Name"] for m in rig.app.attrs["Mounts"]}
            spec = AppSpec(name=rig.app_name, image=images["modelserver"],
                           port=int(urlparse(rig.app_url).port or 0),
                           models_volume=mounts["/app/models"],
                           backup_volume=mounts["/backup/models"])
            load_stack_script().renew_app(client, spec, rig.app, "as make demo does")
            assert rig.config is not None and rig.db is not None
            record_known_good(client, rig.config, rig.db, "app-prod")
            assert rig.get("/model/health")[1]["model_path"] == "/app/models/best_model.pth"

            rig.post_alert(alert_payload("load-failure", rig.inject("missing-dependency")))
            second = rig.wait_execution(after=first["id"])
            steps = {s["id"]: s for s in second["steps"]}
            assert (second["outcome"], second["scenario"]) == ("success", "missing_dependency"), \
                steps["rollback_image"]
            assert steps["rollback_image"]["status"] == "ok"
            rig.assert_healthy_on_the_primary_model()
            assert rig.get("/model/health")[1]["model_path"] == "/app/models/best_model.pth"
    finally:
        # renew_app's container and volumes carry the stack's labels, not the session's.
        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
            client.containers.get(f"scn-{SESSION_ID}-back-to-back").remove(force=True)
        for name in volumes:
            with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                client.volumes.get(name).remove(force=True)
        with contextlib.suppress(docker.errors.ImageNotFound, docker.errors.APIError):
            client.images.remove(WITHOUT_PILLOW, force=True)
