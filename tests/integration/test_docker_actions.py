"""Every docker.* action of the runtime against a real container (issue 6)."""

from __future__ import annotations

import time

import pytest

from remediator.adapters.docker_runtime import DockerActions
from remediator.core.targets import Target
from remediator.errors import ActionFailed, ActionTimeout, TargetNotFound
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


def test_writes_go_only_under_the_targets_write_paths_and_never_through_a_link(
        box, actions: DockerActions) -> None:  # type: ignore[no-untyped-def]
    target = Target(name="t", selector={}, container=box.name, base_url="http://127.0.0.1:1",
                    backup_path="/backup/models")
    as_app = {"user": "appuser"}
    actions.call("docker.exec", {"cmd": ["sh", "-c", "echo weights > /backup/models/m.pth"]},
                 target, 10)
    # The app user's traps: a folder link and a file link inside the model folder.
    actions.call("docker.exec", {"cmd": ["sh", "-c", "ln -s /etc /app/models/etc && "
                                         "ln -s /etc/passwd /app/models/p.pth"], **as_app},
                 target, 10)

    def refused(action: str, args: dict[str, object], match: str) -> None:
        with pytest.raises(ActionFailed, match=match):
            actions.call(action, args, target, 10)

    refused("docker.copy", {"src": "/backup/models/m.pth", "dest": "/etc/cron.d/x"},
            "outside the paths target 't' allows writes under")
    refused("docker.copy", {"src": "/backup/models/m.pth", "dest": "/app/models/../../etc/"},
            "not an absolute path without '..'")
    refused("docker.copy", {"src": "/backup/models/m.pth", "dest": "/app/models/etc/x"},
            "/app/models/etc in .* is a symbolic link")
    refused("docker.copy", {"src": "/backup/models/m.pth", "dest": "/app/models/p.pth"},
            "is a symbolic link")
    refused("docker.put_file", {"path": "/app/models/etc/shadow", "content": "x"},
            "is a symbolic link")
    refused("docker.exec", {"cmd": ["chmod", "644", "/app/models/p.pth"], "user": "root"},
            "is a symbolic link")
    refused("docker.exec", {"cmd": ["chown", "-R", "root", "/etc"], "user": "root"},
            "outside the paths")
    refused("docker.exec", {"cmd": ["find", "/app/models", "-exec", "chmod", "644", "{}", "+"],
                            "user": "root"}, "-type f or -type d")
    refused("docker.exec", {"cmd": ["chown", "-R", "-L", "appuser", "/app/models"]},
            "follow symbolic links")
    # A link as the source is refused from its stat, before any byte is read.
    refused("docker.copy", {"src": "/app/models/p.pth", "dest": "/app/models/q.pth"},
            "not a regular file")
    refused("docker.copy", {"src": "/app/models", "dest": "/app/models/q.pth"},
            "not a regular file")
    passwd = actions.call("docker.exec", {"cmd": ["stat", "-c", "%a %s", "/etc/passwd"]},
                          target, 10)["stdout"]
    assert passwd.split()[0] == "644"
    # Under the write paths, with no link on the way: done.
    ok = actions.call("docker.copy", {"src": "/backup/models/m.pth", "dest": "/app/models/"},
                      target, 10)
    assert ok["output"].startswith("copied /backup/models/m.pth -> /app/models/m.pth")


def test_logs_are_read_up_to_the_cap_and_the_cut_is_said(
        box, actions: DockerActions, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    import remediator.adapters.docker_runtime as runtime
    monkeypatch.setattr(runtime, "MAX_LOG_BYTES", 4096)
    target = target_for(box)
    actions.call("docker.exec", {"cmd": ["sh", "-c", "for i in $(seq 1 2000); do "
                                         "echo line-$i > /proc/1/fd/1; done"]}, target, 30)
    out = actions.call("docker.logs", {}, target, 30)
    assert out["cap_bytes"] == 4096 and out["bytes_cut"] > 0
    assert len(out["output"].encode()) < 4096 + 200
    assert "only the last 4096 bytes were kept" in out["output"]
    assert out["output"].rstrip().endswith("line-2000")


def test_a_timed_out_exec_is_ended_inside_the_container_children_too(
        box, actions: DockerActions) -> None:  # type: ignore[no-untyped-def]
    target = target_for(box)
    with pytest.raises(ActionTimeout, match=r"still running after 1s; killed in the container"):
        actions.call("docker.exec", {"cmd": ["sh", "-c", "sleep 301 & sleep 302; wait"],
                                     "timeout": 1.0, "user": "appuser"}, target, 30)
    ps = actions.call("docker.exec", {"cmd": ["sh", "-c", "cat /proc/[0-9]*/cmdline"]},
                      target, 10)["stdout"]
    assert "301" not in ps and "302" not in ps


def test_a_timed_out_exec_that_cannot_be_killed_is_not_reported_killed(
        box, actions: DockerActions, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    import remediator.adapters.docker_runtime as runtime
    from remediator.core import defaults

    # The kill goes astray (a killer that kills nothing): the engine still sees it running.
    monkeypatch.setattr(runtime, "EXEC_KILLER", "true")
    monkeypatch.setattr(defaults, "EXEC_KILL_CONFIRM_S", 1.0)
    with pytest.raises(ActionTimeout, match=r"NOT killed: it is still running"):
        actions.call("docker.exec", {"cmd": ["sleep", "303"], "timeout": 1.0},
                     target_for(box), 30)
    box.exec_run(["sh", "-c", "kill -9 $(pidof sleep)"])
