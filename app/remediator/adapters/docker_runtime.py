"""Docker actions through the Docker Engine API (docker SDK), translated to domain errors.

Each action takes rendered, validated arguments and returns a dict of outputs that
playbooks read as `steps.<id>.<field>`. Commands are argv lists: nothing goes through a
shell. Only the target's own container is touched.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import signal
import tarfile
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import docker
import docker.errors
from docker.models.containers import Container

from remediator.core.targets import Target
from remediator.errors import ActionFailed, ActionTimeout, RuntimeError_, TargetNotFound

__all__ = ["DockerActions", "memory_usage"]

DEFAULT_STOP_TIMEOUT = 10
"""Seconds docker.restart waits for a clean stop before SIGKILL."""


@contextlib.contextmanager
def translated(action: str, target: Target) -> Iterator[None]:
    """docker/requests errors → RuntimeError_ subclasses naming the action and container."""
    try:
        yield
    except docker.errors.NotFound as exc:
        raise TargetNotFound(f"{action}: container {target.container!r} not found "
                             f"({exc.explanation or exc})") from None
    except docker.errors.APIError as exc:
        raise ActionFailed(f"{action} on {target.container}: {exc.explanation or exc}") from None
    except docker.errors.DockerException as exc:
        raise RuntimeError_(f"{action}: Docker engine unreachable: {exc}") from None
    except OSError as exc:  # requests' ConnectionError is an OSError
        raise RuntimeError_(f"{action}: Docker engine unreachable: {exc}") from None


def memory_usage(stats: dict[str, Any]) -> tuple[int, int]:
    """(used, limit) bytes as `docker stats` computes them, on cgroup v1 and v2."""
    mem = stats.get("memory_stats") or {}
    usage = int(mem.get("usage") or 0)
    detail = mem.get("stats") or {}
    if "total_inactive_file" in detail:  # cgroup v1
        usage -= int(detail["total_inactive_file"])
    elif "inactive_file" in detail:  # cgroup v2
        usage -= int(detail["inactive_file"])
    return max(usage, 0), int(mem.get("limit") or 0)


def cpu_percent(stats: dict[str, Any]) -> float | None:
    """CPU use over the sample, as `docker stats` computes it."""
    cpu, pre = stats.get("cpu_stats") or {}, stats.get("precpu_stats") or {}
    cpu_delta = (cpu.get("cpu_usage") or {}).get("total_usage", 0) - (
        (pre.get("cpu_usage") or {}).get("total_usage", 0))
    system_delta = (cpu.get("system_cpu_usage") or 0) - (pre.get("system_cpu_usage") or 0)
    cpus = cpu.get("online_cpus") or 1
    if cpu_delta <= 0 or system_delta <= 0:
        return None
    return round(cpu_delta / system_delta * cpus * 100.0, 2)


def parse_since(value: Any) -> int | None:
    """`10m` / `30s` / `2h` / seconds → a unix timestamp for the logs API."""
    if value in (None, ""):
        return None
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(s|m|h)?", str(value).strip())
    if not match:
        raise ActionFailed(f"docker.logs: since must look like 10m or 30s, got {value!r}")
    scale = {"s": 1, "m": 60, "h": 3600, None: 1}[match.group(2)]
    return int(time.time() - float(match.group(1)) * scale)


class DockerActions:
    """The docker.* actions. `client_factory` is a seam for tests and for reconnection."""

    def __init__(self, client_factory: Callable[[], docker.DockerClient] | None = None) -> None:
        self._factory = client_factory or (lambda: docker.from_env(timeout=60))
        self._client: docker.DockerClient | None = None

    @property
    def client(self) -> docker.DockerClient:
        if self._client is None:
            self._client = self._factory()
        return self._client

    def ping(self) -> bool:
        try:
            return bool(self.client.ping())
        except (docker.errors.DockerException, OSError):
            self._client = None
            return False

    def container(self, target: Target) -> Container:
        return self.client.containers.get(target.container)

    def call(self, action: str, args: dict[str, Any], target: Target,
             timeout: float) -> dict[str, Any]:
        method = getattr(self, action.replace("docker.", "do_"), None)
        if method is None:
            raise ActionFailed(f"unknown docker action {action!r}")
        with translated(action, target):
            result: dict[str, Any] = method(args, target, timeout)
            return result

    # -- read-only ------------------------------------------------------------------------
    def do_inspect(self, args: dict[str, Any], target: Target, timeout: float) -> dict[str, Any]:
        box = self.container(target)
        state, host = box.attrs["State"], box.attrs["HostConfig"]
        quota, period = host.get("CpuQuota") or 0, host.get("CpuPeriod") or 0
        cpus = (host.get("NanoCpus") or 0) / 1e9 or (quota / period if quota and period else None)
        out = {
            "container_status": state.get("Status"), "running": bool(state.get("Running")),
            "exit_code": state.get("ExitCode"), "oom_killed": bool(state.get("OOMKilled")),
            "restart_count": box.attrs.get("RestartCount", 0),
            "health": (state.get("Health") or {}).get("Status"),
            "memory_limit": host.get("Memory") or 0, "memory_swap": host.get("MemorySwap") or 0,
            "cpus": cpus, "image": box.attrs["Config"].get("Image"),
            "image_id": box.attrs.get("Image"),
            "env": list(box.attrs["Config"].get("Env") or []),
            "started_at": state.get("StartedAt"), "state_error": state.get("Error") or "",
        }
        out["output"] = (f"{target.container}: {out['container_status']}, exit code "
                         f"{out['exit_code']}, OOMKilled={out['oom_killed']}, "
                         f"health={out['health']}, restarts={out['restart_count']}")
        return out

    def do_logs(self, args: dict[str, Any], target: Target, timeout: float) -> dict[str, Any]:
        box = self.container(target)
        kwargs: dict[str, Any] = {"stdout": True, "stderr": True, "timestamps": False}
        since = parse_since(args.get("since"))
        if since is not None:
            kwargs["since"] = since
        if args.get("tail") is not None:
            kwargs["tail"] = int(args["tail"])
        lines = box.logs(**kwargs).decode("utf-8", "replace").splitlines()
        total = len(lines)
        if args.get("grep"):
            pattern = re.compile(str(args["grep"]), re.IGNORECASE)
            lines = [line for line in lines if pattern.search(line)]
        return {"output": "\n".join(lines), "lines": len(lines), "total_lines": total}

    def do_stats(self, args: dict[str, Any], target: Target, timeout: float) -> dict[str, Any]:
        stats = self.container(target).stats(stream=False)
        used, limit = memory_usage(stats)
        percent = round(100.0 * used / limit, 2) if limit else None
        return {"memory_usage": used, "memory_limit": limit, "memory_percent": percent,
                "cpu_percent": cpu_percent(stats),
                "output": f"memory {used / 2**20:.1f} MiB / {limit / 2**20:.1f} MiB"}

    def do_exec(self, args: dict[str, Any], target: Target, timeout: float) -> dict[str, Any]:
        cmd = args["cmd"]
        if not isinstance(cmd, list) or not all(isinstance(part, str) for part in cmd):
            raise ActionFailed("docker.exec: cmd must be a list of strings (argv), not a shell")
        box = self.container(target)
        api = self.client.api
        exec_id = api.exec_create(box.id, cmd, user=str(args.get("user") or ""),
                                  workdir=args.get("workdir"), environment=args.get("env"),
                                  stdout=True, stderr=True)["Id"]
        limit = float(args.get("timeout") or timeout)
        stdout, stderr = self._run_exec(exec_id, limit, cmd)
        exit_code = api.exec_inspect(exec_id).get("ExitCode")
        return {"exit_code": exit_code, "stdout": stdout, "stderr": stderr,
                "output": stdout + stderr}

    def _run_exec(self, exec_id: str, limit: float, cmd: list[str]) -> tuple[str, str]:
        """The SDK has no exec timeout: run it in a thread and kill the process on expiry."""
        result: dict[str, Any] = {}

        def work() -> None:
            try:
                result["out"] = self.client.api.exec_start(exec_id, demux=True)
            except Exception as exc:  # handed to the caller's thread below
                result["error"] = exc

        worker = threading.Thread(target=work, name="docker-exec", daemon=True)
        worker.start()
        worker.join(limit)
        if worker.is_alive():
            self._kill_exec(exec_id)
            raise ActionTimeout(f"docker.exec {cmd[0]!r} still running after {limit:g}s; "
                                "killed")
        if "error" in result:
            raise result["error"]
        out, err = result["out"] or (None, None)
        return ((out or b"").decode("utf-8", "replace"), (err or b"").decode("utf-8", "replace"))

    def _kill_exec(self, exec_id: str) -> None:
        pid = int(self.client.api.exec_inspect(exec_id).get("Pid") or 0)
        if pid > 0:
            # The exec's Pid is in the host's namespace: reachable when we run on the host.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)

    # -- mutating -------------------------------------------------------------------------
    def do_restart(self, args: dict[str, Any], target: Target, timeout: float) -> dict[str, Any]:
        box = self.container(target)
        box.restart(timeout=int(args.get("stop_timeout") or DEFAULT_STOP_TIMEOUT))
        box.reload()
        return {"output": f"restarted {target.container}: {box.status}",
                "started_at": box.attrs["State"].get("StartedAt")}

    def do_update(self, args: dict[str, Any], target: Target, timeout: float) -> dict[str, Any]:
        box = self.container(target)
        kwargs: dict[str, Any] = {}
        if args.get("memory") is not None:
            kwargs["mem_limit"] = int(args["memory"])
            # Memory and swap move together, or Docker refuses a limit above the old swap.
            kwargs["memswap_limit"] = int(args.get("memory_swap") or args["memory"])
        if args.get("cpus") is not None:
            kwargs["cpu_period"] = 100_000
            kwargs["cpu_quota"] = int(float(args["cpus"]) * 100_000)
        if not kwargs:
            raise ActionFailed("docker.update: nothing to change (memory or cpus)")
        box.update(**kwargs)
        box.reload()
        host = box.attrs["HostConfig"]
        quota, period = host.get("CpuQuota") or 0, host.get("CpuPeriod") or 0
        out = {"memory": host.get("Memory"), "memory_swap": host.get("MemorySwap"),
               "cpus": quota / period if quota and period else None}
        out["output"] = f"updated {target.container}: " + ", ".join(
            f"{key}={value}" for key, value in out.items())
        return out

    def do_copy(self, args: dict[str, Any], target: Target, timeout: float) -> dict[str, Any]:
        """Copy a file inside the target (e.g. /backup/models/x → /app/models/) by archive.

        The archive API works even when the app cannot (stopped container, no `cp`), and
        keeps the file's owner and mode as they are in the backup.
        """
        box = self.container(target)
        src, dest = str(args["src"]), str(args["dest"])
        stream, stat = box.get_archive(src)
        data = b"".join(stream)
        name = stat["name"]
        if not dest.endswith("/"):
            dest_dir, new_name = dest.rsplit("/", 1)
            data, name = rename_in_tar(data, name, new_name), new_name
            dest = dest_dir or "/"
        if not box.put_archive(dest, data):
            raise ActionFailed(f"docker.copy: could not write {dest} in {target.container}")
        return {"output": f"copied {src} -> {dest.rstrip('/')}/{name}",
                "bytes": stat.get("size")}


def rename_in_tar(data: bytes, old: str, new: str) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(data)) as source, \
            tarfile.open(fileobj=out, mode="w") as sink:
        for member in source.getmembers():
            extracted = source.extractfile(member) if member.isfile() else None
            if member.name == old or member.name.startswith(old + "/"):
                member.name = new + member.name[len(old):]
            sink.addfile(member, extracted)
    return out.getvalue()
