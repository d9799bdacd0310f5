"""A Swarm service as a target, on a one-node swarm of the second (private) dockerd: the
docker.* actions the shipped playbooks use, through the real runtime (Engines).

restart is `service update --force`, a resource change a service update and a rollback to
the last-known-good a service update to the recorded image (never `service rollback`, whose
previous spec is whatever the last update replaced), each checked on every replica it
touched; the other actions act on the alerting replica's container."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import closing
from typing import Any

import pytest

from remediator.adapters.docker_runtime import last_known_good_snapshot
from remediator.adapters.engines import Engines
from remediator.core.targets import Target
from remediator.errors import ActionFailed, TargetNotFound
from tests.harness.processes import free_port
from tests.harness.second_engine import SecondEngine
from tests.harness.swarm import create_app_service, remove_service, running_task

pytestmark = [pytest.mark.docker, pytest.mark.timeout(900)]

NAME = "swarm-actions"
GiB = 2**30
RECORDS: dict[str, dict[str, Any]] = {}
"""The store's last-known-good records, as the provider Engines reads them."""


@pytest.fixture(scope="module")
def service(swarm: SecondEngine, images: dict[str, str]) -> Iterator[tuple[Target, Engines]]:
    port = free_port()
    create_app_service(swarm, NAME, images["modelserver"], port)
    try:
        running_task(swarm, NAME, timeout=180)
        target = Target(name="svc", selector={"service": NAME}, container=NAME,
                        base_url=f"http://127.0.0.1:{port}", docker_host=swarm.unix_url,
                        swarm_service=NAME, max_memory=4 * GiB, cpu_min=0.5, cpu_max=2)
        yield (target.for_alert({"instance": f"127.0.0.1:{port}"}),
               Engines([target], lkg_provider=RECORDS.get))
    finally:
        remove_service(swarm, NAME)


def resources(swarm: SecondEngine) -> dict[str, dict[str, int]]:
    with closing(swarm.client()) as client:
        spec = client.api.inspect_service(NAME)["Spec"]
    return dict(spec["TaskTemplate"]["Resources"])


def limits(swarm: SecondEngine) -> dict[str, int]:
    return dict(resources(swarm)["Limits"])


def reservations(swarm: SecondEngine) -> dict[str, int]:
    return dict(resources(swarm).get("Reservations") or {})


def test_the_alert_instance_picks_the_replica_and_inspect_names_it(
        service: tuple[Target, Engines], swarm: SecondEngine) -> None:
    target, engines = service
    task = running_task(swarm, NAME)
    out = engines.call("docker.inspect", {}, target, 30)
    assert out["running"] is True and out["slot"] == task["slot"], out
    assert out["task_id"] == task["id"] and out["memory_limit"] == 3 * GiB, out
    stray = target.for_alert({"instance": "127.0.0.1:1"})
    with pytest.raises(TargetNotFound, match=r"matches the alert's instance '127.0.0.1:1' "
                                              rf"\(replicas: {NAME}.1\)"):
        engines.call("docker.inspect", {}, stray, 30)


def test_restart_is_a_forced_service_update_checked_on_every_replica(
        service: tuple[Target, Engines], swarm: SecondEngine) -> None:
    target, engines = service
    before = running_task(swarm, NAME)
    out = engines.call("docker.restart", {"stop_timeout": 1}, target, 120)
    after = running_task(swarm, NAME)
    assert after["slot"] == before["slot"] and after["id"] != before["id"], (before, after)
    assert out["output"].startswith(f"service update --force {NAME}: slot "), out
    assert [(r["slot"], r["state"], r["container"]) for r in out["replicas"]] == [
        (after["slot"], "running", after["container"][:12])], out
    assert engines.call("docker.inspect", {}, target, 30)["task_id"] == after["id"]


def test_a_resource_change_is_a_service_update(
        service: tuple[Target, Engines], swarm: SecondEngine) -> None:
    target, engines = service
    before = running_task(swarm, NAME)
    out = engines.call("docker.update", {"memory": 3.5 * GiB, "memory_swap": 3.5 * GiB,
                                         "memory_reservation": 2 * GiB}, target, 240)
    assert limits(swarm)["MemoryBytes"] == int(3.5 * GiB)
    assert reservations(swarm)["MemoryBytes"] == 2 * GiB
    assert out["memory"] == int(3.5 * GiB), out  # the new replica's container has them
    assert out["memory_reservation"] == 2 * GiB, out
    after = running_task(swarm, NAME)
    assert after["id"] != before["id"] and after["slot"] == before["slot"]
    assert [(r["slot"], r["state"]) for r in out["replicas"]] == [(before["slot"], "running")]


def running_image(swarm: SecondEngine) -> str:
    """The image id the service's running replica runs."""
    with closing(swarm.client()) as client:
        return str(client.api.inspect_container(running_task(swarm, NAME)["container"])["Image"])


def test_a_rollback_goes_to_the_recorded_last_known_good_not_to_swarms_previous_spec(
        service: tuple[Target, Engines], swarm: SecondEngine, images: dict[str, str]) -> None:
    target, engines = service
    RECORDS.clear()
    with pytest.raises(ActionFailed, match=r"no last-known-good recorded for svc"):
        engines.call("docker.recreate", {"last_known_good": True}, target, 240)
    snapshot = last_known_good_snapshot(engines.call, target)
    assert snapshot is not None
    good, config = snapshot
    RECORDS["svc"] = {"image": good, **config, "recorded_at": "2026-12-06T10:00:00Z"}
    with pytest.raises(ActionFailed, match=r"is image sha256:\w+, the one Swarm service "
                                           rf"{NAME} runs now: going back to it changes"):
        engines.call("docker.recreate", {"last_known_good": True}, target, 240)

    # A bad deploy (another image), then an update after it (Remediator's own restart):
    # Swarm's previous spec is now the bad one.
    with closing(swarm.client()) as client:
        client.images.build(fileobj=io.BytesIO(
            f"FROM {images['modelserver']}\nLABEL org.remediator.test=v2-broken\n".encode()),
            tag=f"{NAME}:v2-broken", rm=True)
    engines.call("docker.recreate", {"image": f"{NAME}:v2-broken"}, target, 240)
    bad = running_image(swarm)
    assert bad != good
    engines.call("docker.restart", {}, target, 240)
    assert running_image(swarm) == bad

    back = engines.call("docker.recreate", {"last_known_good": True}, target, 240)
    assert running_image(swarm) == good, back
    assert back["output"].startswith(f"service update to the last-known-good {NAME} "), back
    assert [r["state"] for r in back["replicas"]] == ["running"], back
    assert engines.call("docker.inspect", {}, target, 30)["running"] is True
    # Asked again, it is refused (it would change nothing), not swapped back to the bad one.
    with pytest.raises(ActionFailed, match="changes nothing"):
        engines.call("docker.recreate", {"last_known_good": True}, target, 240)
    assert running_image(swarm) == good
