"""A Swarm service as a target, on a one-node swarm of the second (private) dockerd: the
docker.* actions the shipped playbooks use, through the real runtime (Engines).

restart is `service update --force`, a resource change a service update and a rollback
`service rollback`, each checked on every replica it touched; the other actions act on the
alerting replica's container."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing

import pytest

from remediator.adapters.engines import Engines
from remediator.core.targets import Target
from remediator.errors import TargetNotFound
from tests.harness.processes import free_port
from tests.harness.second_engine import SecondEngine
from tests.harness.swarm import create_app_service, remove_service, running_task

pytestmark = [pytest.mark.docker, pytest.mark.timeout(900)]

NAME = "swarm-actions"
GiB = 2**30


@pytest.fixture(scope="module")
def service(swarm: SecondEngine, images: dict[str, str]) -> Iterator[tuple[Target, Engines]]:
    port = free_port()
    create_app_service(swarm, NAME, images["modelserver"], port)
    try:
        running_task(swarm, NAME, timeout=180)
        target = Target(name="svc", selector={"service": NAME}, container=NAME,
                        base_url=f"http://127.0.0.1:{port}", docker_host=swarm.unix_url,
                        swarm_service=NAME, max_memory=4 * GiB, cpu_min=0.5, cpu_max=2)
        yield target.for_alert({"instance": f"127.0.0.1:{port}"}), Engines([target])
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


def test_a_resource_change_is_a_service_update_and_a_rollback_is_service_rollback(
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

    back = engines.call("docker.recreate", {"last_known_good": True}, target, 240)
    assert back["output"].startswith(f"service rollback {NAME}"), back
    assert limits(swarm)["MemoryBytes"] == 3 * GiB
    assert engines.call("docker.inspect", {}, target, 30)["memory_limit"] == 3 * GiB
    assert [r["state"] for r in back["replicas"]] == ["running"], back
