"""Targets past one engine, through the real loop (Prometheus -> Alertmanager -> Remediator).

One Remediator, three targets, each on its own engine:
- app-tls: a container on a second dockerd (its own socket, data root, bridge), reached
  over TCP with TLS (certificates made by the test);
- app-swarm: a Swarm service on that engine (a one-node swarm), reached on its socket;
- app-far: an app whose engine does not answer (docker_host is a socket where nothing
  listens: the shared engine is never stopped, other tests use it).
A deleted model on app-tls and on app-swarm's task is restored; app-far's run fails with
an error naming it and its engine, and is escalated; the others are not affected.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import closing

import docker
import pytest
import requests

from devstack.demo import inject_fault
from devstack.stack import AppSpec, app_container_kwargs
from tests.harness.docker_engine import Resources, host_port
from tests.harness.engine_stack import App, Fleet, fleet_loop, wait
from tests.harness.processes import free_port
from tests.harness.second_engine import SecondEngine
from tests.harness.stack import requests_ok
from tests.harness.swarm import create_app_service, remove_service, running_task
from tests.support.http_sink import HttpSink

pytestmark = [pytest.mark.docker, pytest.mark.e2e, pytest.mark.timeout(1200)]

SERVICE = "app-swarm"


def run_app(resources: Resources, name: str, image: str) -> str:
    """app-prod's settings (compose's), on the engine `resources` talks to; its URL."""
    spec = AppSpec(name=name, image=image, port=free_port(),
                   models_volume=resources.volume().name, backup_volume=resources.volume().name)
    box = resources.client.containers.run(**app_container_kwargs(spec, resources.labels()))
    resources.containers.append(box)
    return f"http://127.0.0.1:{host_port(box)}"


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory, images: dict[str, str],
          docker_client: docker.DockerClient, second_engine: SecondEngine,
          swarm: SecondEngine) -> Iterator[tuple[Fleet, HttpSink, dict[str, str]]]:
    tmp = tmp_path_factory.mktemp("engines")
    nobody = tmp / "nobody.sock"  # a socket file nothing accepts on: an engine that is down
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(nobody))
    listener.close()
    here, there = Resources(docker_client), Resources(second_engine.client())
    port = free_port()
    try:
        far_url = run_app(here, f"e2e-far-{port}", images["modelserver"])
        tls_url = run_app(there, f"e2e-tls-{port}", images["modelserver"])
        create_app_service(swarm, SERVICE, images["modelserver"], port)
        swarm_url = f"http://127.0.0.1:{port}"
        for url in (far_url, tls_url, swarm_url):
            wait(lambda url=url: requests_ok(f"{url}/health"), 180, f"{url} to be healthy")
        tls = second_engine.certs
        apps = [
            App("app-far", far_url, f"container: {here.containers[0].name}\n"
                                    f"docker_host: unix://{nobody}"),
            App("app-tls", tls_url, f"container: {there.containers[0].name}\n"
                                    f"docker_host: {second_engine.tls_url}\n"
                                    f"tls: {{ca: {tls.ca}, cert: {tls.client_cert}, "
                                    f"key: {tls.client_key}}}"),
            App(SERVICE, swarm_url, f"swarm_service: {SERVICE}\n"
                                    f"docker_host: {second_engine.unix_url}"),
        ]
        names = {"app-far": here.containers[0].name, "app-tls": there.containers[0].name}
        with HttpSink(path="/escalations", default_status=202) as sink, \
                pytest.MonkeyPatch.context() as patch:
            patch.setenv("ESCALATION_WEBHOOK_URL", sink.url)
            with fleet_loop(tmp, apps) as loop:
                yield loop, sink, names
    finally:
        remove_service(swarm, SERVICE)
        here.cleanup()  # their volumes: labelled, removed with the session's
        there.cleanup()  # the second engine's volumes go with its data root
        there.client.close()


def test_tls_engine_target_is_repaired_while_an_unreachable_engine_fails_only_its_own(
        fleet: tuple[Fleet, HttpSink, dict[str, str]], docker_client: docker.DockerClient,
        second_engine: SecondEngine) -> None:
    loop, sink, names = fleet
    ready = loop.get("/readyz")
    body = ready.json()
    assert ready.status_code == 200 and body["docker"] is True, body
    far_engine = next(label for label in body["engines"] if label.endswith("nobody.sock"))
    assert body["engines"][far_engine]["up"] is False, body
    assert "(target 'app-far') did not answer" in body["engines"][far_engine]["error"], body
    assert body["engines"][second_engine.tls_url]["up"] is True, body
    metrics = loop.get("/metrics").text
    assert f'remediator_engine_up{{engine="{far_engine}"}} 0.0' in metrics
    assert f'remediator_engine_up{{engine="{second_engine.tls_url}"}} 1.0' in metrics

    with closing(second_engine.client()) as there:
        inject_fault(there, names["app-tls"], "missing-file")
    inject_fault(docker_client, names["app-far"], "missing-file")

    far = wait(lambda: loop.finished("app-far"), 240, "app-far's execution to finish")
    assert far["outcome"] == "failed", far
    inspect = next(s for s in far["steps"] if s["id"] == "inspect")
    assert inspect["status"] == "failed", inspect
    assert inspect["error"].startswith(f"docker.inspect: Docker engine {far_engine} "
                                       "(target 'app-far') did not answer"), inspect
    def could_not_run() -> list[str]:  # config/escalation.yml infra-remediation-could-not-run
        return [r.text for r in sink.requests if r.json().get("team") == "infrastructure"
                and "could not run the playbook" in r.text]

    wait(lambda: [t for t in could_not_run() if "app-far" in t], 120, "app-far's escalation")

    tls = wait(lambda: loop.finished("app-tls"), 300, "app-tls's execution to finish")
    assert tls["outcome"] == "success", tls
    steps = {s["id"]: s["status"] for s in tls["steps"]}
    assert steps["restore_model"] == "ok" and steps["restart"] == "ok", steps
    assert requests.get(f"{loop.apps[1].url}/health", timeout=10).json() == {
        "status": "healthy", "model_loaded": True}
    wait(lambda: loop.alerts("ModelLoadFailure", "app-tls") == [], 120,
         "app-tls's alert to resolve")
    assert loop.alerts("ModelLoadFailure", "app-far"), "app-far was never fixed: still firing"
    assert not [t for t in could_not_run() if "app-tls" in t]


def test_swarm_service_task_is_repaired(
        fleet: tuple[Fleet, HttpSink, dict[str, str]], swarm: SecondEngine) -> None:
    loop, _, _ = fleet
    before = running_task(swarm, SERVICE)
    with closing(swarm.client()) as there:  # deletes the model and restarts the container
        inject_fault(there, before["container"], "missing-file")
    fault_at = time.time()

    execution = wait(lambda: loop.finished(SERVICE), 300, "app-swarm's execution to finish")
    assert execution["outcome"] == "success", execution
    steps = {s["id"]: s for s in execution["steps"]}
    assert steps["restore_model"]["status"] == "ok", steps["restore_model"]
    # The alerting replica was found from the alert's instance (its host-mode port).
    assert steps["inspect"]["outputs"]["slot"] == before["slot"], steps["inspect"]
    # Restart is a forced service update, checked on the replica it replaced.
    restart = steps["restart"]
    assert restart["status"] == "ok", restart
    assert restart["outputs"]["output"].startswith(f"service update --force {SERVICE}: "
                                                   f"slot {before['slot']} running"), restart
    after = running_task(swarm, SERVICE)
    assert after["slot"] == before["slot"] and after["id"] != before["id"]
    assert requests.get(f"{loop.apps[2].url}/health", timeout=10).json() == {
        "status": "healthy", "model_loaded": True}
    wait(lambda: loop.alerts("ModelLoadFailure", SERVICE) == [], 120,
         "app-swarm's alert to resolve")
    print(f"\nswarm fault-to-fixed: {time.time() - fault_at:.1f}s")
