"""The harness proves itself against a real engine, the way Remediator will use it."""

from __future__ import annotations

import time
from pathlib import Path

import docker
import pytest
import requests

from tests.harness.docker_engine import LABEL, SESSION_ID, Resources
from tests.harness.processes import alertmanager, prometheus

pytestmark = pytest.mark.docker

SLEEPER = ["python", "-c", "import time\nprint('sleeper ready', flush=True)\ntime.sleep(3600)"]


def wait_for_log(container: docker.models.containers.Container, text: str) -> str:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        logs = container.logs().decode()
        if text in logs:
            return logs
        time.sleep(0.1)
    raise AssertionError(f"{text!r} not in logs: {container.logs()!r}")


def test_logs_exec_restart_and_memory_update(images: dict[str, str],
                                             docker_resources: Resources) -> None:
    box = docker_resources.run(images["modelserver"], SLEEPER, mem_limit="256m",
                               memswap_limit="256m")
    assert "sleeper ready" in wait_for_log(box, "sleeper ready")
    assert box.labels[LABEL] == SESSION_ID

    result = box.exec_run(["sh", "-c", "echo out; echo err >&2; exit 3"], demux=True)
    assert result.exit_code == 3
    assert result.output == (b"out\n", b"err\n")
    imports = box.exec_run(["python", "-c", "import torch, mobile_multimodal; print('ok')"])
    assert (imports.exit_code, imports.output.strip()) == (0, b"ok")

    started = box.attrs["State"]["StartedAt"]
    box.restart(timeout=2)
    box.reload()
    assert box.status == "running" and box.attrs["State"]["StartedAt"] != started

    box.update(mem_limit="512m", memswap_limit="512m")
    box.reload()
    assert box.attrs["HostConfig"]["Memory"] == 512 * 2**20
    assert box.attrs["HostConfig"]["MemorySwap"] == 512 * 2**20


def test_out_of_memory_is_visible_as_oomkilled(images: dict[str, str],
                                               docker_resources: Resources) -> None:
    hog = ["python", "-c", "x = bytearray(400 * 2**20); print('survived')"]
    box = docker_resources.run(images["modelserver"], hog, mem_limit="64m",
                               memswap_limit="64m")
    assert box.wait(timeout=60)["StatusCode"] == 137
    box.reload()
    assert box.attrs["State"]["OOMKilled"] is True
    assert b"survived" not in box.logs()


def test_ports_are_published_on_loopback_only(images: dict[str, str],
                                              docker_resources: Resources) -> None:
    box = docker_resources.run(images["modelserver"], SLEEPER, ports={"8080/tcp": None})
    box.reload()
    bindings = box.attrs["NetworkSettings"]["Ports"]["8080/tcp"]
    assert {b["HostIp"] for b in bindings} == {"127.0.0.1"}


def test_remediator_image_imports_remediator(images: dict[str, str],
                                             docker_resources: Resources) -> None:
    box = docker_resources.run(images["remediator"], ["python", "-c",
                               "import remediator, sys; print('torch' in sys.modules)"])
    assert box.wait(timeout=60)["StatusCode"] == 0
    assert box.logs().strip() == b"False"


def test_prometheus_scrapes_alertmanager(tmp_path: Path) -> None:
    with alertmanager(tmp_path, AM_CONFIG) as am:
        assert am.auth is not None  # Alertmanager answers only with its credentials
        config = PROM_CONFIG.replace("TARGET", f"127.0.0.1:{am.port}").replace(
            "PASSWORD_FILE", str(am.auth.password_file))
        with prometheus(tmp_path, config) as prom:
            deadline = time.monotonic() + 20
            value = None
            while time.monotonic() < deadline:
                body = requests.get(f"{prom.url}/api/v1/query",
                                    params={"query": 'up{job="alertmanager"}'}, timeout=5).json()
                if body["data"]["result"]:
                    value = body["data"]["result"][0]["value"][1]
                    if value == "1":
                        break
                time.sleep(0.2)
            assert value == "1"


AM_CONFIG = """
route: {receiver: devnull}
receivers: [{name: devnull}]
"""

PROM_CONFIG = """
global: {scrape_interval: 1s, evaluation_interval: 1s}
scrape_configs:
  - job_name: alertmanager
    static_configs: [{targets: ["TARGET"]}]
    basic_auth: {username: monitoring, password_file: PASSWORD_FILE}
"""
