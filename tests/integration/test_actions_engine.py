"""The engine's actions against the real thing (issue 9): docker.recreate on a real
container, http.check and prometheus.query against a real modelserver and a real
Prometheus scraping it, docker.read_file/put_file, docker.exec's data and docker.update on
a --cpus container, and `remediator run --dry-run` against a real broken container.

tests/integration/test_docker_actions.py covers inspect/logs/exec/stats/restart/update/copy.
"""

from __future__ import annotations

import contextlib
import io
import json
import tarfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest
import requests
import yaml
from click.testing import CliRunner
from docker.models.containers import Container

from devstack.demo import inject_fault
from devstack.stack import APP_HEALTHCHECK
from remediator.adapters.docker_runtime import (
    DockerActions,
    last_known_good_snapshot,
    storage_identity,
)
from remediator.adapters.http import HttpActions
from remediator.core.targets import Target
from remediator.errors import ActionFailed, RuntimeError_
from remediator.service.cli import main
from tests.harness.docker_engine import LABEL, SESSION_ID, Resources, host_port
from tests.harness.faults import wait_for_fault
from tests.harness.processes import free_port, prometheus

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parents[2]
SLEEPER = ["python", "-c", "import signal, sys, time\n"
           "signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))\ntime.sleep(3600)"]
"""Stops at once on SIGTERM (a bare PID 1 ignores it and docker stop waits 10 s)."""
MODEL = "/app/models/best_model.pth"


# -- fixtures -------------------------------------------------------------------------------
@pytest.fixture
def actions(docker_client: docker.DockerClient) -> DockerActions:
    return DockerActions(lambda: docker_client)


def target_for(container: Container, base_url: str = "http://127.0.0.1:1") -> Target:
    return Target(name=f"t-{container.name}", selector={}, container=str(container.name),
                  base_url=base_url)


@pytest.fixture
def replaced(docker_client: docker.DockerClient) -> Iterator[Callable[[str], None]]:
    """Clean up what a recreate leaves that the harness cannot: the replacement container
    (a new ID under the old name) and the anonymous volumes it took over by name."""
    names: list[str] = []
    yield names.append
    for name in names:
        with contextlib.suppress(docker.errors.NotFound):
            box = docker_client.containers.get(name)
            volumes = [m["Name"] for m in box.attrs["Mounts"] if m["Type"] == "volume"]
            box.remove(force=True, v=True)
            for volume in volumes:
                with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                    docker_client.volumes.get(volume).remove()


def wait_healthy(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(requests.RequestException, ValueError):
            if requests.get(url + "/health", timeout=2).json().get("status") == "healthy":
                return
        time.sleep(0.2)
    raise AssertionError(f"{url} not healthy after {timeout}s")


@pytest.fixture(scope="module")
def served(docker_client: docker.DockerClient, images: dict[str, str]) -> Iterator[Container]:
    """One real modelserver (`modelserver serve`, the image's CMD), healthy, on 127.0.0.1."""
    resources = Resources(docker_client)
    box = resources.run(images["modelserver"], ports={"8080/tcp": None}, mem_limit="1g",
                        memswap_limit="1g")
    try:
        wait_healthy(f"http://127.0.0.1:{host_port(box)}")
        yield box
    finally:
        resources.cleanup()


def served_url(box: Container) -> str:
    return f"http://127.0.0.1:{host_port(box)}"


def sh(box: Container, script: str) -> str:
    code, out = box.exec_run(["sh", "-c", script])
    assert code == 0, out
    return str(out.decode())


# -- docker.recreate --------------------------------------------------------------------------
def test_recreate_applies_overrides_and_keeps_name_ports_volumes_and_settings(
    images: dict[str, str], docker_resources: Resources, actions: DockerActions,
    replaced: Callable[[str], None],
) -> None:
    backup = docker_resources.volume()  # named; /app/models stays the image's anonymous VOLUME
    old = docker_resources.run(
        images["modelserver"], SLEEPER, ports={"8080/tcp": None}, environment={"FOO": "bar"},
        labels={"role": "model"}, restart_policy={"Name": "unless-stopped"},
        mem_limit="256m", memswap_limit="256m", healthcheck=APP_HEALTHCHECK,
        volumes={backup.name: {"bind": "/backup/models", "mode": "rw"}})
    replaced(str(old.name))
    sh(old, "echo precious > /app/models/marker && echo saved > /backup/models/marker")
    port = host_port(old)

    out = actions.call("docker.recreate", {"env": {"CUDA_VISIBLE_DEVICES": "", "FOO": "baz"},
                                           "config": {"memory": 384 * 2**20}},
                       target_for(old), 60)

    new = actions.client.containers.get(str(old.name))
    assert new.id == out["container_id"] != old.id and new.status == "running"
    assert out["image"] == images["modelserver"] == new.attrs["Config"]["Image"]
    env = new.attrs["Config"]["Env"]
    assert "CUDA_VISIBLE_DEVICES=" in env and "FOO=baz" in env and "FOO=bar" not in env
    assert any(entry.startswith("PATH=/opt/venv/bin") for entry in env)
    assert new.attrs["Config"]["Cmd"] == SLEEPER
    assert new.attrs["Config"]["Labels"]["role"] == "model"
    assert new.attrs["Config"]["Labels"][LABEL] == SESSION_ID
    assert new.attrs["Config"]["Healthcheck"]["Interval"] == APP_HEALTHCHECK["interval"]
    host = new.attrs["HostConfig"]
    assert host["RestartPolicy"]["Name"] == "unless-stopped"
    assert host["Memory"] == host["MemorySwap"] == 384 * 2**20
    assert new.attrs["NetworkSettings"]["Ports"]["8080/tcp"] == [
        {"HostIp": "127.0.0.1", "HostPort": str(port)}]
    assert sh(new, "cat /app/models/marker /backup/models/marker") == "precious\nsaved\n"
    assert actions.client.containers.list(all=True, filters={"name": f"{old.name}-old-"}) == []


def test_recreate_run_again_after_a_crash_that_left_the_old_container_parked(
    images: dict[str, str], docker_resources: Resources, actions: DockerActions,
    replaced: Callable[[str], None],
) -> None:
    # Remediator died between parking the old container and creating the new one: the
    # resumed (idempotent) step must find the parked container, not fail on a missing name.
    old = docker_resources.run(images["modelserver"], SLEEPER, environment={"FOO": "bar"})
    replaced(str(old.name))
    stale = docker_resources.run(images["modelserver"], SLEEPER)
    stale.rename(f"{old.name}-old-{int(time.time()) - 7200}")  # parked two hours ago: left be
    old.rename(f"{old.name}-old-{int(time.time())}")
    out = actions.call("docker.recreate", {"env": {"FOO": "baz"}}, target_for(old), 60)
    new = actions.client.containers.get(str(old.name))
    assert new.id == out["container_id"] != old.id and new.status == "running"
    assert "FOO=baz" in new.attrs["Config"]["Env"]
    left = actions.client.containers.list(all=True, filters={"name": f"{old.name}-old-"})
    assert [box.id for box in left] == [stale.id]


def test_recreate_rolls_back_when_the_image_does_not_exist(
    images: dict[str, str], docker_resources: Resources, actions: DockerActions,
) -> None:
    old = docker_resources.run(images["modelserver"], SLEEPER)
    old.reload()
    with pytest.raises(ActionFailed, match=r"No such image.*old container was put back"):
        actions.call("docker.recreate", {"image": f"rt-missing-{SESSION_ID}:nope"},
                     target_for(old), 60)
    back = actions.client.containers.get(str(old.name))
    assert back.id == old.id and back.status == "running"
    # Never stopped: the new container failed before the old one had to give up its ports.
    assert back.attrs["State"]["StartedAt"] == old.attrs["State"]["StartedAt"]
    assert actions.client.containers.list(all=True, filters={"name": f"{old.name}-"}) == []


@pytest.fixture
def empty_image(docker_client: docker.DockerClient) -> Iterator[str]:
    """An image with no files at all: a container from it is created, then cannot start."""
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        tar.addfile(tarfile.TarInfo("empty"), io.BytesIO(b""))
    tag = f"rt-empty-{SESSION_ID}:{uuid.uuid4().hex[:6]}"
    repository, version = tag.split(":")
    docker_client.api.import_image_from_data(data.getvalue(), repository=repository,
                                             tag=version)
    yield tag
    with contextlib.suppress(docker.errors.NotFound):
        docker_client.images.remove(tag, force=True)


def test_recreate_rolls_back_when_the_new_container_cannot_start(
    images: dict[str, str], docker_resources: Resources, actions: DockerActions,
    empty_image: str,
) -> None:
    old = docker_resources.run(images["modelserver"], SLEEPER, ports={"8080/tcp": None})
    sh(old, "echo precious > /app/models/marker")
    with pytest.raises(ActionFailed, match="old container was put back"):
        actions.call("docker.recreate", {"image": empty_image}, target_for(old), 60)
    back = actions.client.containers.get(str(old.name))
    assert back.id == old.id and back.status == "running"
    assert sh(back, "cat /app/models/marker") == "precious\n"
    assert host_port(back) == host_port(old)
    leftovers = actions.client.containers.list(all=True, filters={"ancestor": empty_image})
    assert leftovers == []


def test_recreate_last_known_good_restores_its_image_and_env(
    images: dict[str, str], docker_resources: Resources, docker_client: docker.DockerClient,
    replaced: Callable[[str], None],
) -> None:
    old = docker_resources.run(images["modelserver"], SLEEPER, environment={"BROKEN": "1"})
    replaced(str(old.name))
    target = target_for(old)
    asked: list[str] = []

    def provider(name: str) -> dict[str, Any] | None:
        asked.append(name)
        return {"image": images["modelserver"], "env": ["MODEL_DIR=/app/models", "GOOD=1"],
                "storage": storage_identity(docker_client, old.attrs)}

    with pytest.raises(ActionFailed, match=f"no last-known-good recorded for {target.name}"):
        DockerActions(lambda: docker_client, lambda name: None).call(
            "docker.recreate", {"last_known_good": True}, target, 60)
    assert docker_client.containers.get(str(old.name)).id == old.id  # untouched

    out = DockerActions(lambda: docker_client, provider).call(
        "docker.recreate", {"last_known_good": True, "env": {"EXTRA": ""}}, target, 60)
    assert asked == [target.name]
    new = docker_client.containers.get(str(old.name))
    assert new.id == out["container_id"] != old.id
    env = new.attrs["Config"]["Env"]
    assert env[:3] == ["MODEL_DIR=/app/models", "GOOD=1", "EXTRA="] and "BROKEN=1" not in env


def test_recreate_last_known_good_writes_back_its_config_files_before_the_start(
    images: dict[str, str], docker_resources: Resources, docker_client: docker.DockerClient,
    replaced: Callable[[str], None],
) -> None:
    """A fix wrote model_path into the container's config (scenario 5); a rollback recreate
    must not lose it: the last-known-good's copy goes into the new container."""
    config = "/app/config/model.yml"
    old = docker_resources.run(images["modelserver"], SLEEPER)
    replaced(str(old.name))
    shipped = old.exec_run(["cat", config]).output.decode()
    good = shipped.replace("model_path: best_model.pth", "model_path: best_model_converted.pth")
    assert good != shipped
    records = {"t": {"image": images["modelserver"], "env": ["MODEL_DIR=/app/models"],
                     "files": {config: good},
                     "storage": storage_identity(docker_client, old.attrs)}}
    target = Target(name="t", selector={}, container=str(old.name), base_url="http://x")
    out = DockerActions(lambda: docker_client, records.get).call(
        "docker.recreate", {"last_known_good": True}, target, 60)
    assert out["output"].endswith(f"running; restored {config}")
    new = docker_client.containers.get(str(old.name))
    assert new.id != old.id
    assert new.exec_run(["cat", config]).output.decode() == good
    assert new.exec_run(["stat", "-c", "%a %U", config]).output == b"644 appuser\n"


# -- http.check and prometheus.query against real endpoints ------------------------------------
def test_http_check_against_a_real_modelserver(served: Container) -> None:
    http = HttpActions("http://127.0.0.1:1")
    target = target_for(served, served_url(served))
    healthy = http.call("http.check", {"path": "/health", "expect": {
        "status": "healthy", "model_loaded": True}}, target, 10)
    assert healthy["ok"] is True and healthy["status_code"] == 200
    assert healthy["body"] == {"status": "healthy", "model_loaded": True}

    png = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJ"
           "RU5ErkJggg==")
    inference = http.call("http.check", {"path": "/model/inference", "method": "POST",
                                         "body": {"image": png, "task": "captioning"}},
                          target, 30)
    assert inference["ok"] is True, inference["output"]

    wrong = http.call("http.check", {"path": "/health", "expect": {"status": "degraded"},
                                     "retries": 1, "interval": 0.1}, target, 10)
    assert wrong["ok"] is False and wrong["body"]["status"] == "healthy"
    assert "after 2 attempt(s)" in wrong["output"]
    missing = http.call("http.check", {"path": "/no-such-page"}, target, 10)
    assert missing["ok"] is False and missing["status_code"] == 404


SCRAPE = """
global: {{scrape_interval: 1s, evaluation_interval: 1s}}
scrape_configs:
  - job_name: app-prod
    static_configs:
      - targets: ["127.0.0.1:{port}"]
        labels: {{service: app-prod}}
"""


def wait_for_value(http: HttpActions, query: str, timeout: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        out = http.call("prometheus.query", {"query": query}, TARGETLESS, 10)
        if out["value"] is not None or time.monotonic() > deadline:
            return out
        time.sleep(0.3)


TARGETLESS = Target(name="none", selector={}, container="none", base_url="http://127.0.0.1:1")


def test_prometheus_query_against_a_real_prometheus_scraping_the_modelserver(
    served: Container, tmp_path: Path,
) -> None:
    with prometheus(tmp_path, SCRAPE.format(port=host_port(served))) as prom:
        http = HttpActions(prom.url)
        loaded = wait_for_value(http, 'model_loaded{job="app-prod", service="app-prod"}')
        assert loaded["value"] == 1.0, loaded
        assert loaded["result"][0]["metric"]["service"] == "app-prod"
        failures = http.call("prometheus.query", {"query": "model_load_failures_total"},
                             TARGETLESS, 10)
        assert failures["value"] == 0.0
        empty = http.call("prometheus.query", {"query": "no_such_metric"}, TARGETLESS, 10)
        assert empty["value"] is None and empty["output"].endswith("(no data)")
        with pytest.raises(ActionFailed, match="parse error"):
            http.call("prometheus.query", {"query": "rate(("}, TARGETLESS, 10)
    with pytest.raises(RuntimeError_, match="unreachable"):
        http.call("prometheus.query", {"query": "up"}, TARGETLESS, 10)


# -- remediator run --dry-run against a real healthy container ---------------------------------
def test_run_dry_run_prints_the_plan_and_mutates_nothing(
        images: dict[str, str], docker_resources: Resources, tmp_path: Path) -> None:
    # A real scenario 1: the model file gone and the app restarted on its fallback.
    port = free_port()
    box = docker_resources.run(images["modelserver"], ports={"8080/tcp": port},
                               mem_limit="1g", memswap_limit="1g")
    url = f"http://127.0.0.1:{port}"
    wait_healthy(url)
    inject_fault(docker_resources.client, str(box.name), "missing-file")
    wait_for_fault(docker_resources.client, str(box.name), url, "missing-file")
    config = yaml.safe_load((ROOT / "config" / "remediator.yml").read_text())
    config["targets"][0].update(container=box.name, base_url=url)
    config["prometheus_url"] = "http://127.0.0.1:1"  # down: the playbook carries on
    (tmp_path / "remediator.yml").write_text(yaml.safe_dump(config))
    alert = tmp_path / "alert.json"
    alert.write_text(json.dumps({"status": "firing", "labels": {
        "alertname": "ModelLoadFailure", "service": "app-prod", "instance": "app-prod:8080",
        "job": "app-prod", "severity": "critical"}, "annotations": {},
        "startsAt": "2026-01-01T00:00:00Z"}))
    box.reload()
    before = box.attrs["State"]["StartedAt"]

    result = CliRunner().invoke(main, [
        "run", str(ROOT / "playbooks" / "model_load_failure.yml"), "--alert", str(alert),
        "--dry-run", "--config", str(tmp_path / "remediator.yml")])

    assert result.exit_code == 0, result.output
    for step in ("failures", "inspect", "logs", "check", "classify"):
        assert f"] {step} (" in result.output
    assert "ok" in line_of(result.output, "  check:")  # the read-only exec runs in a dry run
    assert "scenario: file_missing_or_corrupted" in result.output
    assert "outcome: dry_run" in result.output
    for fix in ("restore_model", "restart"):
        assert "skipped_dry_run" in line_of(result.output, f"  {fix}:")
    assert "skipped" in line_of(result.output, "  health:")  # nothing was fixed to validate
    box.reload()
    assert box.attrs["State"]["StartedAt"] == before and box.status == "running"
    assert box.exec_run(["test", "-e", MODEL]).exit_code == 1  # still gone


# -- docker.read_file, docker.put_file, docker.exec's data, docker.update on --cpus ----------
def test_read_file_and_put_file_round_trip_keeping_mode_and_owner(
        served: Container, actions: DockerActions) -> None:
    target = target_for(served)
    config = "/app/config/model.yml"
    read = actions.call("docker.read_file", {"path": config}, target, 10)
    assert (read["exists"], read["mode"], read["uid"], read["gid"]) == (True, "0644", 1000, 1000)
    assert read["content"] == (ROOT / "config" / "model.yml").read_text()
    try:
        put = actions.call("docker.put_file", {"path": config, "content": "device: cpu\n"},
                           target, 10)
        assert (put["bytes"], put["previous_bytes"]) == (12, read["bytes"])
        assert served.exec_run(["stat", "-c", "%a %U", config]).output.decode().strip() == \
            "644 appuser"
        assert served.exec_run(["cat", config]).output == b"device: cpu\n"
    finally:
        actions.call("docker.put_file", {"path": config, "content": read["content"]}, target, 10)
    assert actions.call("docker.read_file", {"path": "/nope"}, target, 10)["exists"] is False
    new = actions.call("docker.put_file", {"path": "/app/models/new.txt", "content": "x",
                                           "mode": 0o600, "owner": "1000:1000"}, target, 10)
    assert new["previous_bytes"] is None
    assert served.exec_run(["stat", "-c", "%a %u", "/app/models/new.txt"]).output == \
        b"600 1000\n"


def test_last_known_good_is_used_only_on_the_storage_it_was_taken_on(
    images: dict[str, str], docker_resources: Resources, docker_client: docker.DockerClient,
    replaced: Callable[[str], None],
) -> None:
    """A bad deploy over the same volumes is what a rollback undoes: the record still holds.
    Volumes removed and created again (as `make demo` does to start from the image) are
    another incarnation: a config recorded on the old ones (model_path naming a converted
    file they held) is refused, and nothing is touched."""
    config = "/app/config/model.yml"
    models = docker_resources.volume()
    old = docker_resources.run(images["modelserver"], SLEEPER,
                               volumes={models.name: {"bind": "/app/models", "mode": "rw"}})
    replaced(str(old.name))
    target = Target(name="t", selector={}, container=str(old.name), base_url="http://x",
                    config_files=(config,))
    actions = DockerActions(lambda: docker_client)
    snapshot = last_known_good_snapshot(actions.call, target)
    assert snapshot is not None
    image, recorded = snapshot
    assert f"/app/models=volume:{models.name}@{models.attrs['CreatedAt']}" in \
        recorded["storage"]
    records = {"t": {"image": image, **recorded, "recorded_at": "then"}}
    rollback = DockerActions(lambda: docker_client, records.get)

    actions.call("docker.recreate", {"env": {"BROKEN": "1"}}, target, 60)  # a bad deploy
    rollback.call("docker.recreate", {"last_known_good": True}, target, 60)
    assert "BROKEN=1" not in docker_client.containers.get(str(old.name)).attrs["Config"]["Env"]

    box = docker_client.containers.get(str(old.name))
    box.remove(force=True)
    docker_client.volumes.get(models.name).remove()
    docker_resources.volume(models.name)  # same name, another volume
    fresh = docker_resources.run(images["modelserver"], SLEEPER, name=str(old.name),
                                 volumes={models.name: {"bind": "/app/models", "mode": "rw"}})
    with pytest.raises(ActionFailed, match=r"another incarnation .* not used"):
        rollback.call("docker.recreate", {"last_known_good": True}, target, 60)
    with pytest.raises(ActionFailed, match="another incarnation"):
        rollback.call("docker.put_file", {"path": config, "last_known_good": True}, target, 10)
    assert docker_client.containers.get(str(old.name)).id == fresh.id  # untouched


def test_put_file_from_the_last_known_good(served: Container, docker_client: docker.DockerClient
                                           ) -> None:
    config = "/app/config/model.yml"
    original = served.exec_run(["cat", config]).output.decode()
    records = {"t": {"image": "x", "files": {config: original},
                     "storage": storage_identity(docker_client, served.attrs)}}
    actions = DockerActions(lambda: docker_client, lkg_provider=records.get)
    target = Target(name="t", selector={}, container=str(served.name), base_url="http://x")
    served.exec_run(["sh", "-c", f"echo 'load_timeout: soon' > {config}"])
    actions.call("docker.put_file", {"path": config, "last_known_good": True}, target, 10)
    assert served.exec_run(["cat", config]).output.decode() == original
    with pytest.raises(ActionFailed, match=r"holds no copy of /app/config/nope\.yml"):
        actions.call("docker.put_file", {"path": "/app/config/nope.yml",
                                         "last_known_good": True}, target, 10)
    with pytest.raises(ActionFailed, match="no last-known-good recorded for u"):
        actions.call("docker.put_file", {"path": config, "last_known_good": True},
                     Target(name="u", selector={}, container=str(served.name),
                            base_url="http://x"), 10)


def test_put_file_from_the_image_writes_back_the_config_the_image_ships(
        served: Container, actions: DockerActions, docker_client: docker.DockerClient) -> None:
    config, target = "/app/config/model.yml", target_for(served)
    shipped = served.exec_run(["cat", config]).output
    served.exec_run(["sh", "-c", f"echo 'device: gpu' > {config}"])
    before = {c.id for c in docker_client.containers.list(all=True)}
    out = actions.call("docker.put_file", {"path": config, "from_image": True}, target, 30)
    assert served.exec_run(["cat", config]).output == shipped
    assert out["bytes"] == len(shipped) and out["previous_bytes"] == len(b"device: gpu\n")
    assert {c.id for c in docker_client.containers.list(all=True)} == before  # scratch gone
    with pytest.raises(ActionFailed, match=r"ships no /app/config/nope\.yml"):
        actions.call("docker.put_file", {"path": "/app/config/nope.yml", "from_image": True},
                     target, 30)


def test_exec_data_is_stdout_parsed_as_json(served: Container, actions: DockerActions) -> None:
    target = target_for(served)
    out = actions.call("docker.exec", {"cmd": ["python", "-c", "print('{\"a\": [1]}')"]},
                       target, 30)
    assert out["data"] == {"a": [1]}
    assert actions.call("docker.exec", {"cmd": ["echo", "{not json"]}, target, 30)["data"] is None


def test_update_cpus_of_a_container_started_with_cpus(
        images: dict[str, str], docker_resources: Resources, actions: DockerActions) -> None:
    box = docker_resources.run(images["modelserver"], SLEEPER, nano_cpus=int(0.5e9))
    out = actions.call("docker.update", {"cpus": 1.5}, target_for(box), 30)
    assert out["cpus"] == 1.5
    box.reload()
    assert box.attrs["HostConfig"]["NanoCpus"] == int(1.5e9)
    assert actions.call("docker.inspect", {}, target_for(box), 10)["cpus"] == 1.5


def line_of(text: str, needle: str) -> str:
    return next((line for line in text.splitlines() if needle in line), "")
