"""docker.* actions against a fake Docker client: the step timeout bounds them, and
docker.update takes what the schema accepts. The real engine is in tests/integration."""

from __future__ import annotations

import contextlib
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from docker import errors as docker_errors

from remediator.adapters.docker_runtime import DockerActions, storage_identity
from remediator.adapters.engines import Engines
from remediator.core.targets import Target
from remediator.errors import ActionFailed, ActionTimeout
from tests.support.fakes import FakeClock

TARGET = Target(name="app-prod", selector={"service": "app-prod"}, container="app-prod",
                base_url="http://app-prod:8080", max_memory=4 << 30)


class Box:
    """A container: restart takes `restart_takes` seconds of the fake clock."""

    id, name, status = "c1", "app-prod", "running"

    def __init__(self, clock: FakeClock, restart_takes: float = 0.0,
                 host: dict[str, Any] | None = None) -> None:
        self.clock, self.restart_takes = clock, restart_takes
        self.attrs: dict[str, Any] = {"State": {"StartedAt": "now"}, "HostConfig": host or {}}
        self.restarts: list[int] = []
        self.updates: list[dict[str, Any]] = []

    def restart(self, timeout: int) -> None:
        self.restarts.append(timeout)
        self.clock.t += self.restart_takes

    def update(self, **kwargs: Any) -> None:
        self.updates.append(kwargs)
        host = self.attrs["HostConfig"]
        host["Memory"] = kwargs.get("mem_limit", host.get("Memory"))
        host["MemorySwap"] = kwargs.get("memswap_limit", host.get("MemorySwap"))

    def reload(self) -> None:
        pass


def docker_with(box: Box, clock: FakeClock, api: Any = None) -> DockerActions:
    client = SimpleNamespace(containers=SimpleNamespace(get=lambda name: box), api=api)
    return DockerActions(client_factory=lambda: client, clock=clock.monotonic)


# -- the step timeout bounds docker.exec, docker.restart and docker.recreate ---------------

def test_docker_exec_with_a_longer_own_timeout_still_stops_at_the_step_timeout() -> None:
    release = threading.Event()

    class Api:
        def exec_create(self, *args: Any, **kwargs: Any) -> dict[str, str]:
            return {"Id": "e1"}

        def exec_start(self, *args: Any, **kwargs: Any) -> tuple[bytes, bytes]:
            release.wait(5)
            return b"done\n", b""

        def exec_inspect(self, exec_id: str) -> dict[str, int]:
            return {"ExitCode": 0, "Pid": 0}

    clock = FakeClock()
    docker = docker_with(Box(clock), clock, Api())
    started = time.monotonic()
    with pytest.raises(ActionTimeout, match=r"still running after 0\.2s"):
        docker.call("docker.exec", {"cmd": ["sleep", "1"], "timeout": 600.0, "check": True},
                    TARGET, 0.2)
    release.set()
    assert time.monotonic() - started < 2


def test_docker_restart_with_stop_timeout_0_kills_at_once() -> None:
    clock = FakeClock()
    box = Box(clock)
    docker_with(box, clock).call("docker.restart", {"stop_timeout": 0.0}, TARGET, 60)
    assert box.restarts == [0]


def test_docker_restart_grace_is_cut_to_fit_the_step_timeout() -> None:
    clock = FakeClock()
    box = Box(clock)
    docker = docker_with(box, clock)
    docker.call("docker.restart", {}, TARGET, 60)
    docker.call("docker.restart", {"stop_timeout": 30.0}, TARGET, 5.5)
    assert box.restarts == [10, 4]  # the default 10 s; 30 s cut to 5.5 s less 1 s to start


def test_docker_restart_finishing_past_the_step_timeout_is_done_and_says_how_late() -> None:
    # The restart happened: calling it a timeout would hide a change from the report and
    # page someone about a fix that took place.
    clock = FakeClock()
    box = Box(clock, restart_takes=3.0)
    outputs = docker_with(box, clock).call("docker.restart", {}, TARGET, 2.0)
    assert box.restarts == [1]
    assert outputs["late_s"] == 1.0
    assert "1.0s past the step timeout of 2s" in outputs["output"]


def test_docker_recreate_out_of_time_before_the_stop_puts_the_old_container_back() -> None:
    clock = FakeClock()
    calls: list[str] = []

    class Api:
        def create_container_from_config(self, body: Any, name: str) -> dict[str, str]:
            calls.append(f"create {name}")
            clock.t += 10.0  # the engine was slow
            return {"Id": "new"}

        def remove_container(self, container_id: str, **kwargs: Any) -> None:
            calls.append(f"remove {container_id}")

        def start(self, container_id: str) -> None:
            calls.append(f"start {container_id}")

    old = SimpleNamespace(attrs={"HostConfig": {}, "NetworkSettings": {"Networks": {}}},
                          status="running",
                          stop=lambda timeout: calls.append("stop old"),
                          rename=lambda name: calls.append(f"rename old {name}"),
                          reload=lambda: None, start=lambda: calls.append("start old"))
    docker = docker_with(Box(clock), clock, Api())
    with pytest.raises(ActionTimeout, match="before the old container was stopped"):
        docker._replace(old, {}, "app-prod", "app-prod-old", None,
                        deadline=5.0)
    assert calls == ["create app-prod", "remove new", "rename old app-prod"]


def test_docker_recreate_cuts_the_old_container_stop_grace_to_the_time_left() -> None:
    clock = FakeClock()
    stops: list[int] = []
    api = SimpleNamespace(create_container_from_config=lambda body, name: {"Id": "new"},
                          start=lambda container_id: None)
    old = SimpleNamespace(attrs={"HostConfig": {}, "NetworkSettings": {"Networks": {}},
                                 "Config": {"StopTimeout": 30}},
                          status="running", stop=lambda timeout: stops.append(timeout))
    docker_with(Box(clock), clock, api)._replace(old, {}, "app-prod", "p",
                                                  None, deadline=8.0)
    assert stops == [7]


# -- docker.update ----------------------------------------------------------------------------

def test_docker_update_of_memory_swap_alone_keeps_the_memory_limit() -> None:
    clock = FakeClock()
    box = Box(clock, host={"Memory": 3 << 30, "MemorySwap": 3 << 30})
    out = docker_with(box, clock).call("docker.update", {"memory_swap": 4 << 30}, TARGET, 30)
    assert box.updates == [{"mem_limit": 3 << 30, "memswap_limit": 4 << 30}]
    assert (out["memory"], out["memory_swap"]) == (3 << 30, 4 << 30)


def test_docker_update_of_memory_swap_alone_on_an_unlimited_container_says_give_memory() -> None:
    clock = FakeClock()
    box = Box(clock, host={"Memory": 0})
    with pytest.raises(ActionFailed, match="give memory too"):
        docker_with(box, clock).call("docker.update", {"memory_swap": 4 << 30}, TARGET, 30)
    assert box.updates == []


def test_docker_update_sets_the_memory_reservation_beside_the_limit() -> None:
    """Scenario 2's mem_reservation (issue 21): sent with the limit, read back."""
    clock = FakeClock()
    box = Box(clock, host={"Memory": 3 << 30, "MemorySwap": 3 << 30})
    docker_with(box, clock).call("docker.update", {"memory": 4 << 30, "memory_swap": 4 << 30,
                                                   "memory_reservation": 2 << 30}, TARGET, 30)
    assert box.updates == [{"mem_limit": 4 << 30, "memswap_limit": 4 << 30,
                            "mem_reservation": 2 << 30}]


def test_a_memory_reservation_above_the_bound_or_the_limit_is_refused() -> None:
    from remediator.core.actions import bounds_problems

    bounded = Target(name="t", selector={}, container="t", base_url="http://t",
                     max_memory=4 << 30)
    assert bounds_problems("docker.update", {"memory_reservation": 2 << 30}, bounded) == []
    assert bounds_problems("docker.update", {"memory_reservation": 5 << 30}, bounded)
    assert bounds_problems("docker.update", {"memory": 1 << 30,
                                             "memory_reservation": 2 << 30}, bounded)


# -- a timed-out exec in a container without a shell: the host-pid fallback ----------------

class NoShellBox(Box):
    def exec_run(self, *args: Any, **kwargs: Any) -> None:
        raise docker_errors.APIError("exec failed: no such file: sh")


class StuckExecApi:
    """An exec that never returns; its host pid is a real process on this host: started
    as the exec (its environment holds the exec's marker) unless `other` is given."""

    def __init__(self, other: subprocess.Popen[bytes] | None = None) -> None:
        self.proc = other

    def exec_create(self, *args: Any, environment: dict[str, str], **kwargs: Any
                    ) -> dict[str, str]:
        if self.proc is None:
            self.proc = subprocess.Popen(["sleep", "300"], env={**os.environ, **environment})
        return {"Id": "e1"}

    def exec_start(self, *args: Any, **kwargs: Any) -> None:
        assert self.proc is not None
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(30)

    def exec_inspect(self, exec_id: str) -> dict[str, Any]:
        assert self.proc is not None
        return {"Running": self.proc.poll() is None, "Pid": self.proc.pid}

    def close(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(5)


@pytest.fixture
def api() -> Iterator[StuckExecApi]:
    stuck = StuckExecApi()
    yield stuck
    stuck.close()


def no_shell_client(api: StuckExecApi) -> SimpleNamespace:
    return SimpleNamespace(containers=SimpleNamespace(get=lambda name: NoShellBox(FakeClock())),
                           api=api)


def test_a_timed_out_exec_on_a_remote_engine_never_signals_a_local_pid(
        api: StuckExecApi, monkeypatch: pytest.MonkeyPatch) -> None:
    # The engine is another host's: the exec's host pid means nothing here; this host's
    # process with that number (here even one carrying the marker) must live.
    monkeypatch.setattr("remediator.core.defaults.EXEC_KILL_CONFIRM_S", 0.3)
    far = Target(name="app-far", selector={"service": "app-far"}, container="app-far",
                 base_url="http://far:8080", docker_host="tcp://far.example:2376")
    engine = Engines([far]).engine(far)
    engine.docker._factory = lambda: no_shell_client(api)
    with pytest.raises(ActionTimeout, match=r"NOT killed.*end it by hand") as caught:
        engine.docker.call("docker.exec", {"cmd": ["sleep", "9"]}, far, 0.2)
    assert api.proc is not None and api.proc.poll() is None, "a local process was killed"
    assert "tcp://far.example:2376" in str(caught.value)


def test_a_timed_out_exec_on_the_local_engine_is_killed_by_its_host_pid(
        api: StuckExecApi, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOCKER_HOST", raising=False)  # the local socket
    actions = DockerActions(client_factory=lambda: no_shell_client(api))
    with pytest.raises(ActionTimeout, match=r"killed from the host"):
        actions.call("docker.exec", {"cmd": ["sleep", "9"]}, TARGET, 0.2)
    assert api.proc is not None and api.proc.poll() is not None


def test_a_host_pid_that_is_not_the_exec_is_not_signalled(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Remediator in a container without `pid: host`, or the pid reused: the number names
    # a process without the exec's marker, which lives.
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.setattr("remediator.core.defaults.EXEC_KILL_CONFIRM_S", 0.3)
    stuck = StuckExecApi(other=subprocess.Popen(["sleep", "300"]))
    try:
        actions = DockerActions(client_factory=lambda: no_shell_client(stuck))
        with pytest.raises(ActionTimeout, match=r"NOT killed.*end it by hand"):
            actions.call("docker.exec", {"cmd": ["sleep", "9"]}, TARGET, 0.2)
        assert stuck.proc is not None and stuck.proc.poll() is None
    finally:
        stuck.close()


# -- storage_identity: what a last-known-good record belongs to -----------------------------
class Volumes:
    """Each node made its own `svc-models`: another creation time per replica."""

    def __init__(self, created: str) -> None:
        self.created = created

    def get(self, name: str) -> Any:
        return SimpleNamespace(attrs={"CreatedAt": self.created})


def mounts(labels: dict[str, str]) -> dict[str, Any]:
    return {"Config": {"Labels": labels},
            "Mounts": [{"Type": "volume", "Name": "svc-models", "Destination": "/app/models"},
                       {"Type": "bind", "Source": "/etc/app-conf", "Destination": "/etc/app"}]}


def test_a_swarm_replica_storage_is_its_volume_names_so_every_replica_has_the_same() -> None:
    replica = mounts({"com.docker.swarm.task.id": "t1", "com.docker.swarm.service.name": "svc"})
    on_one = storage_identity(SimpleNamespace(volumes=Volumes("2026-12-06T10:00:00Z")), replica)
    on_other = storage_identity(SimpleNamespace(volumes=Volumes("2026-12-06T10:05:00Z")),
                                replica)
    assert on_one == on_other == ["/app/models=volume:svc-models", "/etc/app=bind:/etc/app-conf"]


def test_a_plain_container_storage_keeps_the_volume_creation_time() -> None:
    box = mounts({})
    first = storage_identity(SimpleNamespace(volumes=Volumes("2026-12-06T10:00:00Z")), box)
    again = storage_identity(SimpleNamespace(volumes=Volumes("2026-12-06T11:00:00Z")), box)
    assert first == ["/app/models=volume:svc-models@2026-12-06T10:00:00Z",
                     "/etc/app=bind:/etc/app-conf"]
    assert again != first  # a volume removed and made again is another incarnation
