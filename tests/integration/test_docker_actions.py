"""Every docker.* action of the runtime against a real container (issue 6)."""

from __future__ import annotations

import time

import pytest

from remediator.adapters.docker_runtime import DockerActions
from remediator.core.targets import Target
from remediator.errors import ActionTimeout, TargetNotFound
from tests.harness.docker_engine import Resources

pytestmark = pytest.mark.docker

SLEEPER = ["python", "-c", "import time\nprint('model load error: FileNotFoundError', flush=True)"
           "\nprint('unrelated line', flush=True)\ntime.sleep(3600)"]


@pytest.fixture
def box(images: dict[str, str], docker_resources: Resources):  # type: ignore[no-untyped-def]
    container = docker_resources.run(images["modelserver"], SLEEPER, mem_limit="256m",
                                     memswap_limit="256m")
    deadline = time.monotonic() + 20
    while b"unrelated" not in container.logs() and time.monotonic() < deadline:
        time.sleep(0.1)
    return container


@pytest.fixture
def actions(docker_client) -> DockerActions:  # type: ignore[no-untyped-def]
    return DockerActions(lambda: docker_client)


def target_for(container) -> Target:  # type: ignore[no-untyped-def]
    return Target(name="t", selector={}, container=container.name, base_url="http://127.0.0.1:1")


def test_inspect_reports_state_limits_and_image(box, actions: DockerActions) -> None:  # type: ignore[no-untyped-def]
    out = actions.call("docker.inspect", {}, target_for(box), 10)
    assert out["running"] is True and out["container_status"] == "running"
    assert out["oom_killed"] is False and out["memory_limit"] == 256 * 2**20
    assert out["image"] == "mobile-multimodal:latest"
    assert "running" in out["output"]


def test_logs_since_tail_and_grep(box, actions: DockerActions) -> None:  # type: ignore[no-untyped-def]
    out = actions.call("docker.logs", {"since": 600.0, "grep": "model|load|error"},
                       target_for(box), 10)
    assert out["output"] == "model load error: FileNotFoundError" and out["lines"] == 1
    tail = actions.call("docker.logs", {"tail": 1}, target_for(box), 10)
    assert tail["output"] == "unrelated line"


def test_exec_returns_exit_code_and_keeps_argv_literal(box, actions: DockerActions) -> None:  # type: ignore[no-untyped-def]
    hostile = "$(touch /tmp/pwned); rm -rf /"
    out = actions.call("docker.exec", {"cmd": ["echo", hostile]}, target_for(box), 10)
    assert (out["exit_code"], out["stdout"]) == (0, hostile + "\n")
    probe = actions.call("docker.exec", {"cmd": ["ls", "/tmp/pwned"]}, target_for(box), 10)
    assert probe["exit_code"] != 0
    root = actions.call("docker.exec", {"cmd": ["id", "-u"], "user": "root"}, target_for(box), 10)
    assert root["stdout"].strip() == "0"


def test_exec_that_hangs_is_cut_off_at_its_timeout(box, actions: DockerActions) -> None:  # type: ignore[no-untyped-def]
    started = time.monotonic()
    with pytest.raises(ActionTimeout, match="still running after 1s"):
        actions.call("docker.exec", {"cmd": ["sleep", "300"], "timeout": 1.0},
                      target_for(box), 30)
    assert time.monotonic() - started < 10
    # The hung process itself is killed, not just abandoned.
    ps = actions.call("docker.exec", {"cmd": ["sh", "-c", "cat /proc/[0-9]*/comm"]},
                      target_for(box), 10)
    assert "python" in ps["stdout"].split() and "sleep" not in ps["stdout"].split()


def test_stats_reports_memory_by_dockers_formula(box, actions: DockerActions) -> None:  # type: ignore[no-untyped-def]
    out = actions.call("docker.stats", {}, target_for(box), 30)
    assert 0 < out["memory_usage"] < out["memory_limit"] == 256 * 2**20
    assert 0 < out["memory_percent"] < 100


def test_restart_update_and_copy(box, actions: DockerActions) -> None:  # type: ignore[no-untyped-def]
    target = target_for(box)
    before = box.attrs["State"]["StartedAt"]
    restarted = actions.call("docker.restart", {"stop_timeout": 1.0}, target, 30)
    assert restarted["started_at"] != before

    updated = actions.call("docker.update", {"memory": 512 * 2**20, "cpus": 0.5}, target, 30)
    assert updated["memory"] == updated["memory_swap"] == 512 * 2**20
    assert updated["cpus"] == 0.5

    actions.call("docker.exec", {"cmd": ["sh", "-c", "echo weights > /backup/models/m.pth && "
                                         "chmod 640 /backup/models/m.pth"]}, target, 10)
    copied = actions.call("docker.copy", {"src": "/backup/models/m.pth",
                                          "dest": "/app/models/restored.pth"}, target, 30)
    assert copied["bytes"] == len("weights\n")
    check = actions.call("docker.exec", {"cmd": ["stat", "-c", "%U %a %s",
                                                 "/app/models/restored.pth"]}, target, 10)
    assert check["stdout"].split() == ["appuser", "640", "8"]


def test_missing_container_is_target_not_found(actions: DockerActions) -> None:
    ghost = Target(name="g", selector={}, container="no-such-container-xyz",
                   base_url="http://127.0.0.1:1")
    with pytest.raises(TargetNotFound, match="no-such-container-xyz"):
        actions.call("docker.inspect", {}, ghost, 5)
