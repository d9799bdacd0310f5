"""The engine's actions against the real thing (issue 9): docker.recreate on a real
container, http.check and prometheus.query against a real modelserver and a real
Prometheus scraping it, and `remediator run --dry-run` against a real healthy container.

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

from remediator.adapters.docker_runtime import DockerActions
from remediator.adapters.http import HttpActions
from remediator.cli import main
from remediator.core.targets import Target
from remediator.errors import ActionFailed, RuntimeError_
from remediator.stack import APP_HEALTHCHECK
from tests.harness.docker_engine import LABEL, SESSION_ID, Resources, host_port
from tests.harness.processes import prometheus

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
        return {"image": images["modelserver"], "env": ["MODEL_DIR=/app/models", "GOOD=1"]}

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
def test_run_dry_run_prints_the_plan_and_mutates_nothing(served: Container,
                                                        tmp_path: Path) -> None:
    config = yaml.safe_load((ROOT / "config" / "remediator.yml").read_text())
    config["targets"][0].update(container=served.name, base_url=served_url(served))
    config["prometheus_url"] = "http://127.0.0.1:1"  # down: the playbook carries on
    (tmp_path / "remediator.yml").write_text(yaml.safe_dump(config))
    alert = tmp_path / "alert.json"
    alert.write_text(json.dumps({"status": "firing", "labels": {
        "alertname": "ModelLoadFailure", "service": "app-prod", "instance": "app-prod:8080",
        "job": "app-prod", "severity": "critical"}, "annotations": {},
        "startsAt": "2026-01-01T00:00:00Z"}))
    # The log line of scenario 1 (written to the app's own stdout), so the plan holds fixes.
    sh(served, "echo 'FileNotFoundError: model file not found' > /proc/1/fd/1")
    served.reload()
    before = served.attrs["State"]["StartedAt"]

    result = CliRunner().invoke(main, [
        "run", str(ROOT / "playbooks" / "model_load_failure.yml"), "--alert", str(alert),
        "--dry-run", "--config", str(tmp_path / "remediator.yml")])

    assert result.exit_code == 0, result.output
    for step in ("failures", "logs", "inspect", "model_files", "stats", "classify"):
        assert f"] {step} (" in result.output
    assert "scenario: file_missing_or_corrupted" in result.output
    assert "outcome: dry_run" in result.output
    for fix in ("restore_model", "restart"):
        assert "skipped_dry_run" in line_of(result.output, f"  {fix}:")
    served.reload()
    assert served.attrs["State"]["StartedAt"] == before and served.status == "running"
    assert served.exec_run(["test", "-s", MODEL]).exit_code == 0


def line_of(text: str, needle: str) -> str:
    return next((line for line in text.splitlines() if needle in line), "")
