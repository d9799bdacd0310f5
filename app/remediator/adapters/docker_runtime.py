"""Docker actions through the Docker Engine API (docker SDK), translated to domain errors.

Each action takes rendered, validated arguments and returns a dict of outputs that
playbooks read as `steps.<id>.<field>`. Commands are argv lists: nothing goes through a
shell. Only the target's own container is touched.
"""

from __future__ import annotations

import base64
import collections
import contextlib
import copy
import io
import json
import logging
import math
import os
import posixpath
import re
import signal
import tarfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import docker
import docker.errors
from docker.models.containers import Container

from remediator.core import defaults
from remediator.core.defaults import MAX_ARCHIVE_BYTES, MAX_LOG_BYTES
from remediator.core.redact import redact_env, unmask_env
from remediator.core.targets import Target, check_write_path
from remediator.errors import ActionFailed, ActionTimeout, RuntimeError_, TargetNotFound

__all__ = ["DockerActions", "LkgProvider", "check_exec_paths", "last_known_good_snapshot",
           "memory_usage", "merge_env", "storage_identity"]

log = logging.getLogger("remediator.docker")

LkgProvider = Callable[[str], "dict[str, Any] | None"]
"""Target name -> its last-known-good record {"image": ..., "env": [...], "config": {...}}."""

EXEC_MARKER = "REMEDIATOR_EXEC_ID"
"""Environment variable marking a docker.exec's processes (a random value per exec)."""

EXEC_KILLER = ("for f in /proc/[0-9]*/environ; do case \"$(cat \"$f\" 2>/dev/null)\" in "
               "*\"$0=$1\"*) p=${f#/proc/}; kill -KILL \"${p%/environ}\" 2>/dev/null;; "
               "esac; done")
"""sh script run in the container on a timeout: SIGKILL each process whose environment
holds $0=$1 (the exec's marker); POSIX sh and cat only."""

ActionCall = Callable[[str, dict[str, Any], Target, float], dict[str, Any]]
"""`Runtime.call`: (action, args, target, timeout) -> outputs."""


def last_known_good_snapshot(call: ActionCall, target: Target,
                             timeout: float = 30.0) -> tuple[str, dict[str, Any]] | None:
    """(image id, {"env": [...], "files": {path: text}}) of a running target, for the store.

    The image id, not the tag: `latest` moves, and a rollback must not follow it. `files`
    holds the target's `config_files` as they are now (what docker.put_file with
    last_known_good: true writes back); a target without config_files has none. None when
    the container is not running. `storage` is the incarnation the record belongs to (see
    storage_identity): a rollback uses the record only on that same storage.
    """
    state = call("docker.inspect", {}, target, timeout)
    image = state.get("image_id") or state.get("image")
    if not (state.get("running") and image):
        return None
    config: dict[str, Any] = {"env": list(state.get("env") or []),
                              "storage": list(state.get("storage") or [])}
    if target.config_files:
        files = config["files"] = {}
        for path in target.config_files:
            read = call("docker.read_file", {"path": path}, target, timeout)
            if read.get("exists") and isinstance(read.get("content"), str):
                files[path] = read["content"]
    return str(image), config


def parse_json_output(stdout: str) -> Any:
    """stdout as JSON when it is a JSON object or list (a command's report), else None."""
    text = stdout.strip()
    if not text or text[0] not in "{[":
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


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


def write_file(box: Container, path: str, content: str, mode: int | None = None,
               owner: tuple[int, ...] | None = None) -> tuple[bytes, int | None, int, int, int]:
    """Write `path` in a container (created or running), keeping the mode and owner of the
    file it replaces (a new one: 0644 root) unless given; returns what was written, the
    previous size (None: absent), and the mode and owner used."""
    was_mode, uid, gid, previous = 0o644, 0, 0, None
    with contextlib.suppress(docker.errors.NotFound):
        member, old = read_member(box, path)
        was_mode, uid, gid, previous = member.mode & 0o7777, member.uid, member.gid, len(old)
    mode = was_mode if mode is None else mode
    if owner:
        uid, gid = owner[0], owner[1]
    data = content.encode()
    folder, name = posixpath.split(path)
    if not box.put_archive(folder or "/", single_file_tar(name, data, mode, uid, gid)):
        raise ActionFailed(f"could not write {path} in {box.name}")
    return data, previous, mode, uid, gid


def engine_address() -> str:
    """Where the SDK looks for the engine (DOCKER_HOST, else the default socket)."""
    return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


class DockerActions:
    """The docker.* actions. `client_factory` is a seam for tests and for reconnection."""

    def __init__(self, client_factory: Callable[[], docker.DockerClient] | None = None,
                 lkg_provider: LkgProvider | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 address: str | None = None) -> None:
        self._factory = client_factory or (lambda: docker.from_env(timeout=60))
        self.address = address  # the engine's; None: the environment's (engine_address())
        self._client: docker.DockerClient | None = None
        self.lkg_provider = lkg_provider
        self.clock = clock
        self.ping_error: str | None = None  # why the last ping failed (readiness shows it)

    @property
    def client(self) -> docker.DockerClient:
        if self._client is None:
            self._client = self._factory()
        return self._client

    def ping(self) -> bool:
        """Whether the engine answers; when it does not, ``ping_error`` says why."""
        try:
            ok = bool(self.client.ping())
        except (docker.errors.DockerException, OSError) as exc:
            self._client = None
            self.ping_error = f"Docker engine unreachable at {engine_address()}: {exc}"
            return False
        self.ping_error = None if ok else f"Docker engine at {engine_address()} refused the ping"
        return ok

    def container(self, target: Target) -> Container:
        return self.client.containers.get(target.container)

    @property
    def engine_is_local(self) -> bool:
        """Whether the engine runs on this host (a unix socket): only then is an exec's
        host pid one of this host's processes."""
        return (self.address or engine_address()).startswith("unix://")

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
        cpus = host_cpus(host)
        out = {
            "container_status": state.get("Status"), "running": bool(state.get("Running")),
            "exit_code": state.get("ExitCode"), "oom_killed": bool(state.get("OOMKilled")),
            "restart_count": box.attrs.get("RestartCount", 0),
            "health": (state.get("Health") or {}).get("Status"),
            "memory_limit": host.get("Memory") or 0, "memory_swap": host.get("MemorySwap") or 0,
            "cpus": cpus, "image": box.attrs["Config"].get("Image"),
            "image_id": box.attrs.get("Image"),
            # Names kept, secret values masked: this output is stored and served.
            "env": redact_env(box.attrs["Config"].get("Env") or []),
            "started_at": state.get("StartedAt"), "state_error": state.get("Error") or "",
            "storage": storage_identity(self.client, box.attrs),
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
        kept, read = newest_bytes(box.logs(stream=True, follow=False, **kwargs), MAX_LOG_BYTES)
        lines = kept.decode("utf-8", "replace").splitlines()
        cut = read - len(kept)
        if cut:
            lines = lines[1:]  # the first line kept is a partial one
        total = len(lines)
        if args.get("grep"):
            pattern = re.compile(str(args["grep"]), re.IGNORECASE)
            lines = [line for line in lines if pattern.search(line)]
        note = (f"[docker.logs: {read} bytes of logs; only the last {MAX_LOG_BYTES} bytes were "
                f"kept (cap), {cut} older bytes cut]\n" if cut else "")
        return {"output": note + "\n".join(lines), "lines": len(lines), "total_lines": total,
                "bytes_read": read, "bytes_cut": cut, "cap_bytes": MAX_LOG_BYTES}

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
        for path in check_exec_paths(cmd, target):
            self._refuse_links(box, target, path, "docker.exec")
        api = self.client.api
        # A random marker in the command's environment (its children inherit it): what a
        # timeout finds, inside the container, to end the command's whole process tree.
        marker = uuid.uuid4().hex
        env = {**(args.get("env") or {}), EXEC_MARKER: marker}
        exec_id = api.exec_create(box.id, cmd, user=str(args.get("user") or ""),
                                  workdir=args.get("workdir"), environment=env,
                                  stdout=True, stderr=True)["Id"]
        # with.timeout is the command's own limit; it can shorten the step's, never extend it.
        limit = min(float(args["timeout"]), timeout) if args.get("timeout") else timeout
        stdout, stderr = self._run_exec(box, exec_id, limit, cmd, marker,
                                        str(args.get("user") or ""))
        exit_code = api.exec_inspect(exec_id).get("ExitCode")
        return {"exit_code": exit_code, "stdout": stdout, "stderr": stderr,
                "output": stdout + stderr, "data": parse_json_output(stdout)}

    def _run_exec(self, box: Container, exec_id: str, limit: float, cmd: list[str],
                  marker: str, user: str) -> tuple[str, str]:
        """The SDK has no exec timeout: run it in a thread and, on expiry, end the command
        inside the container; the error says whether that worked."""
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
            outcome = self._end_exec(box, exec_id, marker, user)
            raise ActionTimeout(f"docker.exec {cmd[0]!r} still running after {limit:g}s; "
                                f"{outcome}")
        if "error" in result:
            raise result["error"]
        out, err = result["out"] or (None, None)
        return ((out or b"").decode("utf-8", "replace"), (err or b"").decode("utf-8", "replace"))

    def _exec_running(self, exec_id: str) -> bool:
        return bool(self.client.api.exec_inspect(exec_id).get("Running"))

    def _end_exec(self, box: Container, exec_id: str, marker: str, user: str) -> str:
        """End a timed-out exec inside the container: SIGKILL every process carrying its
        marker, found through /proc as the exec's own user (root without CAP_SYS_PTRACE
        cannot read another user's environment), then as root; then check with the engine
        that the exec has stopped. Returns what happened, for the step's error; never claims
        a kill it did not see."""
        if not self._exec_running(exec_id):
            return "it ended by itself as the timeout struck; nothing to kill"
        how = "in the container"
        try:
            for who in dict.fromkeys([user, "root"]):
                box.exec_run(["sh", "-c", EXEC_KILLER, EXEC_MARKER, marker], user=who)
                if not self._exec_running(exec_id):
                    break
        except docker.errors.DockerException as exc:
            pid = self.client.api.exec_inspect(exec_id).get("Pid")
            if not self.engine_is_local:  # its host pid is another host's: never signal it
                return (f"NOT killed: no shell in {box.name} ({exc}), and its engine "
                        f"{self.address or engine_address()} is on another host, so its "
                        f"host pid {pid} is not ours to signal; end it by hand on that host")
            if not self._kill_host_pid(int(pid or 0), marker):
                return (f"NOT killed: no shell in {box.name} ({exc}), and host pid {pid} "
                        "is not the exec here (Remediator runs without the host's PID "
                        "namespace, `pid: host`, or the pid was reused); end it by hand")
            how = f"from the host (no shell in the container: {exc})"
        deadline = time.monotonic() + defaults.EXEC_KILL_CONFIRM_S
        while time.monotonic() < deadline:
            if not self._exec_running(exec_id):
                return f"killed {how}"
            time.sleep(0.1)
        pid = self.client.api.exec_inspect(exec_id).get("Pid")
        return (f"NOT killed: it is still running in {box.name} (host pid {pid}) after "
                f"SIGKILL {how}; end it by hand")

    @staticmethod
    def _kill_host_pid(pid: int, marker: str) -> bool:
        """SIGKILL the exec by its host pid, if that pid here is the exec's: its environment
        holds the exec's marker. The pid is the host's namespace's; in a container without
        `pid: host`, or once the pid is reused, it is another process, never signalled.
        Returns whether the signal was sent."""
        if pid <= 0:
            return False
        try:
            with open(f"/proc/{pid}/environ", "rb") as handle:
                environ = handle.read().split(b"\0")
        except OSError:  # gone, or not ours to read: not ours to kill either
            return False
        if f"{EXEC_MARKER}={marker}".encode() not in environ:
            return False
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
            return True
        return False

    def do_read_file(self, args: dict[str, Any], target: Target,
                     timeout: float) -> dict[str, Any]:
        """A file's text, mode and owner through the archive API (like `docker cp` out)."""
        path = str(args["path"])
        box = self.container(target)
        try:
            member, data = read_member(box, path)
        except docker.errors.NotFound:
            return {"exists": False, "content": None, "bytes": None, "mode": None,
                    "uid": None, "gid": None, "output": f"{path}: no such file"}
        return {"exists": True, "content": data.decode("utf-8", "replace"), "bytes": len(data),
                "mode": f"{member.mode & 0o7777:04o}", "uid": member.uid, "gid": member.gid,
                "output": f"{path}: {len(data)} bytes, mode {member.mode & 0o7777:04o}, "
                          f"owner {member.uid}:{member.gid}"}

    # -- mutating -------------------------------------------------------------------------
    def do_put_file(self, args: dict[str, Any], target: Target, timeout: float) -> dict[str, Any]:
        """Write a file (like `docker cp` in): given text, or the last-known-good's copy.

        The file keeps its current mode and owner unless the step says otherwise; a new
        file is 0644 root:root by default.
        """
        path = str(args["path"])
        box = self.container(target)
        self._check_writable(box, target, path, "docker.put_file")
        content = self._put_content(args, target, path)
        owner = (tuple(int(part) for part in str(args["owner"]).split(":"))
                 if args.get("owner") else None)
        data, previous, mode, uid, gid = write_file(
            box, path, content,
            int(args["mode"]) if args.get("mode") is not None else None, owner)
        return {"bytes": len(data), "previous_bytes": previous,
                "output": f"wrote {path}: {len(data)} bytes (was "
                          f"{'absent' if previous is None else f'{previous} bytes'}), mode "
                          f"{mode:04o}, owner {uid}:{gid}"}

    def _put_content(self, args: dict[str, Any], target: Target, path: str) -> str:
        if args.get("from_image"):
            return self._image_copy(target, path)
        if not args.get("last_known_good"):
            return str(args["content"])
        files = self._last_known_good(target).get("files") or {}
        if not isinstance(files.get(path), str):
            raise ActionFailed(f"docker.put_file: the last-known-good of {target.name} holds "
                               f"no copy of {path} (record it: list it in the target's "
                               "config_files)")
        return str(files[path])

    def _image_copy(self, target: Target, path: str) -> str:
        """`path` as the container's image ships it: read from a container created, never
        started, from the same image id, then removed."""
        image = str(self.container(target).attrs["Image"])
        api = self.client.api
        scratch = str(api.create_container(image, command=["true"], labels={
            "org.remediator.scratch": target.name})["Id"])
        try:
            _, data = read_member(self.client.containers.get(scratch), path)
        except docker.errors.NotFound:
            raise ActionFailed(f"docker.put_file: the image of {target.container} ships no "
                               f"{path}") from None
        finally:
            api.remove_container(scratch, force=True, v=True)
        return data.decode("utf-8", "replace")

    def do_restart(self, args: dict[str, Any], target: Target, timeout: float) -> dict[str, Any]:
        """Restart with the stop grace cut to fit the step timeout (0 means SIGKILL at once).

        The engine's restart cannot be interrupted half-way, so it is bounded, not cut off:
        a restart that still finishes past the deadline has happened all the same, so it is
        reported as done, with how late (`late_s`), not as a timeout that hides it.
        """
        deadline = self.clock() + timeout
        wanted = args.get("stop_timeout")
        box = self.container(target)
        grace = stop_grace(defaults.DOCKER_STOP_TIMEOUT_S if wanted is None else int(wanted),
                           deadline - self.clock())
        box.restart(timeout=grace)
        box.reload()
        return {"output": f"restarted {target.container}: {box.status}"
                          f"{late_note(self.clock() - deadline, timeout)}",
                "started_at": box.attrs["State"].get("StartedAt"),
                **late_field(self.clock() - deadline)}

    def do_update(self, args: dict[str, Any], target: Target, timeout: float) -> dict[str, Any]:
        box = self.container(target)
        kwargs: dict[str, Any] = {}
        if args.get("memory") is not None:
            kwargs["mem_limit"] = int(args["memory"])
            # Memory and swap move together, or Docker refuses a limit above the old swap.
            kwargs["memswap_limit"] = int(args.get("memory_swap") or args["memory"])
        elif args.get("memory_swap") is not None:
            kwargs.update(swap_only(box.attrs["HostConfig"], int(args["memory_swap"])))
        if args.get("memory_reservation") is not None:
            kwargs["mem_reservation"] = int(args["memory_reservation"])
        nano = bool(box.attrs["HostConfig"].get("NanoCpus"))
        if args.get("cpus") is not None and not nano:
            kwargs["cpu_period"] = 100_000
            kwargs["cpu_quota"] = int(float(args["cpus"]) * 100_000)
        if not kwargs and args.get("cpus") is None:
            raise ActionFailed("docker.update: nothing to change (memory, memory_swap, "
                               "memory_reservation or cpus)")
        if kwargs:
            box.update(**kwargs)
        if args.get("cpus") is not None and nano:
            # Started with --cpus: Docker refuses a quota beside NanoCpus, so move NanoCpus
            # (the SDK's update() has no parameter for it).
            api = self.client.api
            api._raise_for_status(api._post_json(api._url("/containers/{0}/update", box.id),
                                                 data={"NanoCpus": int(float(args["cpus"])
                                                                       * 1e9)}))
        box.reload()
        host = box.attrs["HostConfig"]
        out = {"memory": host.get("Memory"), "memory_swap": host.get("MemorySwap"),
               "cpus": host_cpus(host), "memory_reservation": host.get("MemoryReservation")}
        out["output"] = f"updated {target.container}: " + ", ".join(
            f"{key}={value}" for key, value in out.items())
        return out

    def do_copy(self, args: dict[str, Any], target: Target, timeout: float) -> dict[str, Any]:
        """Copy a file inside the target (e.g. /backup/models/x → /app/models/) by archive.

        The archive API works even when the app cannot (stopped container, no `cp`), and
        keeps the file's owner and mode as they are in the backup. Only a regular file is
        copied (its type is checked before any of its bytes are read), at most
        MAX_ARCHIVE_BYTES, and only to a path under the target's write prefixes with no
        symbolic link on the way.
        """
        box = self.container(target)
        src, dest = str(args["src"]), str(args["dest"])
        member, data = read_member(box, src, MAX_ARCHIVE_BYTES)
        name = posixpath.basename(member.name.rstrip("/"))
        if dest.endswith("/"):
            dest_dir = dest.rstrip("/") or "/"
        else:
            dest_dir, name = dest.rsplit("/", 1)
            dest_dir = dest_dir or "/"
        final = self._check_writable(box, target, posixpath.join(dest_dir, name), "docker.copy")
        dest_dir = posixpath.dirname(final)
        tar = single_file_tar(posixpath.basename(final), data, member.mode & 0o7777,
                              member.uid, member.gid, mtime=int(member.mtime))
        if not box.put_archive(dest_dir, tar):
            raise ActionFailed(f"docker.copy: could not write {dest} in {target.container}")
        return {"output": f"copied {src} -> {final} ({len(data)} bytes; cap "
                          f"{MAX_ARCHIVE_BYTES})", "bytes": len(data)}

    def _check_writable(self, box: Container, target: Target, path: str, action: str) -> str:
        """``path`` normalised, if the target allows writes there and no component of it is
        a symbolic link; else ActionFailed saying which rule refused it."""
        problem = check_write_path(target, path)
        if problem:
            raise ActionFailed(f"{action}: refused: {problem}")
        clean = posixpath.normpath(path)
        self._refuse_links(box, target, clean, action)
        return clean

    def _refuse_links(self, box: Container, target: Target, path: str, action: str) -> None:
        """ActionFailed when ``path`` or a folder above it is a symbolic link in the
        container (one the app user may have planted): never written, chowned or chmodded
        through. Components that do not exist yet end the walk."""
        parts = [p for p in posixpath.normpath(path).split("/") if p]
        for depth in range(1, len(parts) + 1):
            here = "/" + "/".join(parts[:depth])
            stat = path_stat(self.client.api, box.id, here)
            if stat is None:
                return
            if stat.get("linkTarget"):
                raise ActionFailed(
                    f"{action}: refused: {here} in {target.container} is a symbolic link (to "
                    f"{stat['linkTarget']}); Remediator never writes, chowns or chmods through "
                    "a link: remove it, or fix the path by hand")

    def do_recreate(self, args: dict[str, Any], target: Target, timeout: float) -> dict[str, Any]:
        """Replace the container by one with the same settings plus overrides.

        The old container is parked under another name and only removed once the new one
        has started; if creating or starting the new one fails, the new one is removed and
        the old one gets its name back and is started again.
        """
        deadline = self.clock() + timeout
        self._unpark(target)
        old = self.container(target)
        if old.attrs["HostConfig"].get("AutoRemove"):
            raise ActionFailed(f"docker.recreate: {target.container} was started with --rm; "
                               "stopping it would delete it and its volumes")
        lkg = self._last_known_good(target) if args.get("last_known_good") else None
        body = recreate_body(old.attrs, args, lkg, self._image_config)
        body["Image"] = self._same_image(old.attrs, body["Image"], overridden=bool(
            args.get("image") or lkg))
        # A rollback is to the whole known-good state: its config files too (a fix may have
        # written one, e.g. scenario 5's model_path), into the new container before it starts.
        files = {str(k): str(v) for k, v in ((lkg or {}).get("files") or {}).items()}
        parked = f"{target.container}-old-{int(time.time())}"
        old.rename(parked)
        new_id = self._replace(old, body, target.container, parked, files, deadline)
        removed = self._remove_parked(old)
        new = self.client.containers.get(new_id)
        image = new.attrs["Config"].get("Image")
        # Done is done: a recreate that ran late replaced the container all the same, and
        # the report's "make permanent" list and the resume logic need to know it did.
        late = self.clock() - deadline
        note = "" if removed else f"; the old container is left as {parked}"
        restored = f"; restored {', '.join(sorted(files))}" if files else ""
        return {"output": f"recreated {target.container} from {image}: {new.status}"
                          f"{restored}{note}{late_note(late, timeout)}",
                "container_id": new.id, "image": image, **late_field(late)}

    def _last_known_good(self, target: Target) -> dict[str, Any]:
        """The target's record, if it is known good for the container as it is now: taken
        on the very volumes (and binds) the container has now (see storage_identity)."""
        record = self.lkg_provider(target.name) if self.lkg_provider else None
        if not record or not record.get("image"):
            raise ActionFailed(f"no last-known-good recorded for {target.name}")
        now = storage_identity(self.client, self.container(target).attrs)
        if record.get("storage") != now:
            raise ActionFailed(
                f"the last-known-good of {target.name} (recorded {record.get('recorded_at')}) "
                f"is of another incarnation of {target.container}: it was taken on storage "
                f"{record.get('storage') or 'not recorded'}, the container has {now or 'none'} "
                "now (its volumes were recreated since); its settings may name files that no "
                "longer exist, so it is not used. Recreate the container from a good image "
                "by hand (make images), or let a validated fix record a new one")
        return record

    def _image_config(self, image: str) -> dict[str, Any] | None:
        """The image's own Config (its defaults), or None when the image is gone."""
        try:
            config: dict[str, Any] = self.client.images.get(image).attrs.get("Config") or {}
        except docker.errors.ImageNotFound:
            return None
        return config

    def _same_image(self, attrs: dict[str, Any], image: str, overridden: bool) -> str:
        """Without an override: the very image the container runs, even if its tag moved."""
        if overridden:
            return image
        with contextlib.suppress(docker.errors.ImageNotFound):
            if self.client.images.get(image).id == attrs.get("Image"):
                return image
        return str(attrs.get("Image") or image)

    def _replace(self, old: Container, body: dict[str, Any], name: str, parked: str,
                 files: dict[str, str] | None = None, deadline: float = math.inf) -> str:
        """Create the new container, write `files` into it, start it; on failure put the
        old one back and raise. Out of time before the old one is stopped: the same, with
        ActionTimeout; its stop grace is cut to fit the time left."""
        api = self.client.api
        new_id: str | None = None
        try:
            new_id = str(api.create_container_from_config(body, name=name)["Id"])
            for network, endpoint in extra_networks(old.attrs):
                api.connect_container_to_network(new_id, network, **endpoint)
            if files:
                created = self.client.containers.get(new_id)
                for path, text in files.items():
                    write_file(created, path, text)
            left = deadline - self.clock()
            if left <= 0:
                self._roll_back(old, new_id, name, parked, "out of time")
                raise ActionTimeout(f"docker.recreate on {name}: the step timeout ran out "
                                    "before the old container was stopped; it was put back")
            if old.status in ("running", "restarting"):
                old.stop(timeout=stop_grace(stop_timeout(old.attrs), left))
            api.start(new_id)
        except docker.errors.DockerException as exc:
            reason = getattr(exc, "explanation", None) or str(exc)
            self._roll_back(old, new_id, name, parked, reason)
            raise ActionFailed(f"docker.recreate on {name}: {reason}; the old container "
                               "was put back") from None
        return new_id

    def _roll_back(self, old: Container, new_id: str | None, name: str, parked: str,
                   reason: str) -> None:
        try:
            if new_id is not None:
                with contextlib.suppress(docker.errors.NotFound):
                    self.client.api.remove_container(new_id, force=True, v=True)
            old.rename(name)
            old.reload()
            if old.status != "running":
                old.start()
        except docker.errors.DockerException as exc:
            raise ActionFailed(
                f"docker.recreate on {name}: {reason}; putting the old container back failed "
                f"too ({getattr(exc, 'explanation', None) or exc}): it may be left as "
                f"{parked}") from None

    def _unpark(self, target: Target) -> None:
        """Undo a recreate interrupted (Remediator died) after the old container was parked
        as `<name>-old-<time>` and before a new one took its name: give the parked one its
        name back, so the step, run again on resume, recreates from it instead of failing
        on a missing container. None parked, several, or one parked over an hour ago (left
        behind when its removal failed: its settings are stale): left alone (the step says
        so)."""
        with contextlib.suppress(docker.errors.NotFound):
            self.client.containers.get(target.container)
            return
        prefix, recent = f"{target.container}-old-", time.time() - defaults.UNPARK_WITHIN_S
        parked = [box for box in self.client.containers.list(all=True, filters={"name": prefix})
                  if str(box.name).startswith(prefix) and str(box.name)[len(prefix):].isdigit()
                  and int(str(box.name)[len(prefix):]) >= recent]
        if len(parked) == 1:
            log.warning("%s was parked as %s by an interrupted docker.recreate; renamed back",
                        target.container, parked[0].name)
            parked[0].rename(target.container)

    def _remove_parked(self, old: Container) -> bool:
        """Remove the old container but not its volumes: the new one mounts them."""
        try:
            old.remove(force=True, v=False)
        except docker.errors.DockerException:
            return False
        return True


def late_note(late: float, timeout: float) -> str:
    """What the output says of a change that finished `late` seconds past its step timeout."""
    return f" ({late:.1f}s past the step timeout of {timeout:g}s)" if late > 0 else ""


def late_field(late: float) -> dict[str, float]:
    return {"late_s": round(late, 1)} if late > 0 else {}


def stop_grace(wanted: int, left: float) -> int:
    """Seconds of stop grace before SIGKILL: as wanted, cut so the stop and the start fit in
    the `left` seconds of the step (keeping defaults.DOCKER_START_ALLOWANCE_S for the start)."""
    if left <= 0:
        raise ActionTimeout("no time left in the step timeout; nothing was stopped")
    return max(0, min(wanted, math.floor(left - defaults.DOCKER_START_ALLOWANCE_S)))


def swap_only(host: Mapping[str, Any], swap: int) -> dict[str, int]:
    """docker update arguments changing memory+swap alone: Docker takes a swap limit only
    beside a memory limit, so the container's current one is sent with it."""
    memory = int(host.get("Memory") or 0)
    if not memory:
        raise ActionFailed("docker.update: memory_swap needs a memory limit and the container "
                           "has none; give memory too")
    if swap < memory:
        raise ActionFailed(f"docker.update: memory_swap {swap} is below the container's memory "
                           f"limit {memory} (it counts memory plus swap)")
    return {"mem_limit": memory, "memswap_limit": swap}


def host_cpus(host: Mapping[str, Any]) -> float | None:
    """The CPU limit of a HostConfig (--cpus, or quota/period), None when unlimited."""
    quota, period = host.get("CpuQuota") or 0, host.get("CpuPeriod") or 0
    return (host.get("NanoCpus") or 0) / 1e9 or (quota / period if quota and period else None)


def read_member(box: Container, path: str,
                limit: int = defaults.MAX_FILE_BYTES) -> tuple[tarfile.TarInfo, bytes]:
    """One regular file out of the container: (its tar header, its bytes).

    Streamed: the type and size are checked (the archive's stat, then the member's header)
    before any of the file's bytes are read, and no more than ``limit`` bytes are. Raises
    docker.errors.NotFound when there is no such file, ActionFailed when it is not a regular
    file (a link, a folder, a device...) or larger than ``limit``.
    """
    stream, stat = box.get_archive(path, chunk_size=64 * 1024)
    reader = CappedReader(stream, limit + 64 * 1024)  # the file plus its tar headers
    try:
        if stat.get("linkTarget") or int(stat.get("mode") or 0) & _GO_MODE_NOT_REGULAR:
            raise ActionFailed(f"{path} is not a regular file (a link, folder or device)")
        if int(stat.get("size") or 0) > limit:
            raise ActionFailed(f"{path} is {stat.get('size')} bytes: larger than the "
                               f"{limit} bytes this action reads")
        with tarfile.open(fileobj=reader, mode="r|") as archive:
            member = archive.next()
            if member is None or not member.isfile():
                raise ActionFailed(f"{path} is not a regular file")
            if member.size > limit:
                raise ActionFailed(f"{path} is {member.size} bytes: larger than the {limit} "
                                   "bytes this action reads")
            handle = archive.extractfile(member)
            if handle is None:
                raise ActionFailed(f"{path} is not a regular file")
            return member, handle.read()
    finally:
        reader.close()


_GO_MODE_NOT_REGULAR = ((1 << 31) | (1 << 27) | (1 << 26) | (1 << 25) | (1 << 24) | (1 << 21)
                        | (1 << 19))
"""Go os.FileMode bits of the archive stat: dir, symlink, device, named pipe, socket, char
device, irregular (Docker's X-Docker-Container-Path-Stat)."""


class CappedReader(io.RawIOBase):
    """A file object over a stream of byte chunks that refuses to read past ``cap`` bytes."""

    def __init__(self, chunks: Iterator[bytes], cap: int) -> None:
        self._chunks, self._cap, self._read = iter(chunks), cap, 0
        self._buffer = b""

    def readable(self) -> bool:
        return True

    def readinto(self, out: Any) -> int:
        while not self._buffer:
            try:
                self._buffer = next(self._chunks)
            except StopIteration:
                return 0
        size = min(len(out), len(self._buffer))
        if self._read + size > self._cap:
            raise ActionFailed(f"archive larger than the {self._cap} bytes read cap: not read")
        out[:size], self._buffer = self._buffer[:size], self._buffer[size:]
        self._read += size
        return size

    def close(self) -> None:
        closer = getattr(self._chunks, "close", None)
        if closer is not None:
            with contextlib.suppress(Exception):
                closer()
        super().close()


def newest_bytes(chunks: Iterator[bytes], cap: int) -> tuple[bytes, int]:
    """(the last ``cap`` bytes of a stream, how many bytes it had): memory stays bounded."""
    kept: collections.deque[bytes] = collections.deque()
    size = read = 0
    for chunk in chunks:
        kept.append(chunk)
        size += len(chunk)
        read += len(chunk)
        while size - len(kept[0]) >= cap:
            size -= len(kept.popleft())
    data = b"".join(kept)
    return data[-cap:] if len(data) > cap else data, read


def path_stat(api: Any, container_id: str, path: str) -> dict[str, Any] | None:
    """Docker's stat of ``path`` in the container (HEAD on the archive API, no bytes read):
    {"name", "size", "mode", "mtime", "linkTarget"}; None when there is no such path. The
    last component is not followed: ``linkTarget`` says where a link points."""
    resp = api.head(api._url("/containers/{0}/archive", container_id), params={"path": path})
    if resp.status_code == 404:
        return None
    api._raise_for_status(resp)
    header = resp.headers.get("X-Docker-Container-Path-Stat")
    stat: dict[str, Any] = json.loads(base64.b64decode(header)) if header else {}
    return stat


_PATH_COMMANDS = {"chmod", "chown", "chgrp"}
_FOLLOWING_FLAGS = {"-L", "-H", "--dereference", "-follow"}


def check_exec_paths(cmd: list[str], target: Target) -> list[str]:
    """The paths a chmod / chown / chgrp (direct, or run by ``find -exec``) would change,
    each checked against the target's write prefixes; ActionFailed when one is outside, when
    the command would follow symbolic links (-L, -H, --dereference, find -follow), or when a
    find hands chmod/chown entries without ``-type f`` or ``-type d`` (links included)."""
    name = posixpath.basename(cmd[0]) if cmd else ""
    if name in _PATH_COMMANDS:
        operands = _operands(cmd[1:])[1:]  # the first is the mode or owner
        return _checked(cmd, target, operands)
    if name == "find" and any(part in ("-exec", "-execdir", "-ok", "-okdir") and
                              posixpath.basename(cmd[i + 1]) in _PATH_COMMANDS
                              for i, part in enumerate(cmd[:-1])):
        starts = []
        for part in cmd[1:]:
            if part.startswith(("-", "(", "!")):
                break
            starts.append(part)
        first_exec = min(i for i, part in enumerate(cmd) if part in ("-exec", "-execdir",
                                                                     "-ok", "-okdir"))
        types = [cmd[i + 1] for i, part in enumerate(cmd[:first_exec]) if part == "-type"]
        if not types or any(t not in ("f", "d") for t in types):
            raise ActionFailed("docker.exec: refused: find ... -exec chmod/chown must select "
                               "-type f or -type d, so that no symbolic link reaches it")
        return _checked(cmd, target, starts)
    return []


def _operands(args: list[str]) -> list[str]:
    out, options_done = [], False
    for part in args:
        if part == "--" and not options_done:
            options_done = True
        elif part.startswith("-") and not options_done and part != "-":
            if part in _FOLLOWING_FLAGS:
                raise ActionFailed(f"docker.exec: refused: {part} would follow symbolic links")
        else:
            out.append(part)
    return out


def _checked(cmd: list[str], target: Target, paths: list[str]) -> list[str]:
    if any(part in _FOLLOWING_FLAGS for part in cmd[1:]):
        raise ActionFailed("docker.exec: refused: the command would follow symbolic links "
                           f"({' '.join(p for p in cmd if p in _FOLLOWING_FLAGS)})")
    if not paths:
        raise ActionFailed(f"docker.exec: refused: {cmd[0]} without a path to act on")
    for path in paths:
        problem = check_write_path(target, path)
        if problem:
            raise ActionFailed(f"docker.exec: refused {posixpath.basename(cmd[0])}: {problem}")
    return [posixpath.normpath(p) for p in paths]


def single_file_tar(name: str, data: bytes, mode: int, uid: int, gid: int,
                    mtime: int | None = None) -> bytes:
    """A tar archive holding one file, for put_archive."""
    out = io.BytesIO()
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.uid, info.gid = len(data), mode, uid, gid
    info.mtime = int(time.time()) if mtime is None else mtime
    with tarfile.open(fileobj=out, mode="w") as archive:
        archive.addfile(info, io.BytesIO(data))
    return out.getvalue()


# -- docker.recreate: the new container's create body -------------------------------------
_IMAGE_DEFAULTS = ("Cmd", "Entrypoint", "WorkingDir", "User", "Healthcheck", "StopSignal")
"""Config fields a container inherits from its image; a new image brings its own."""


def merge_env(env: list[str], overrides: Mapping[str, str]) -> list[str]:
    """KEY=VALUE entries with overrides applied in place, new keys appended; "" sets KEY=."""
    out, seen = [], set()
    for entry in env:
        key = entry.split("=", 1)[0]
        if key in overrides:
            out.append(f"{key}={overrides[key]}")
            seen.add(key)
        else:
            out.append(entry)
    return out + [f"{key}={value}" for key, value in overrides.items() if key not in seen]


def recreate_body(attrs: dict[str, Any], args: Mapping[str, Any], lkg: Mapping[str, Any] | None,
                  image_config: Callable[[str], dict[str, Any] | None]) -> dict[str, Any]:
    """The Engine API create body for the replacement of the container `attrs` describes."""
    config: dict[str, Any] = copy.deepcopy(attrs["Config"])
    host: dict[str, Any] = copy.deepcopy(attrs["HostConfig"])
    image = str(args.get("image") or (lkg or {}).get("image") or config["Image"])
    if image != config["Image"]:
        defaults = image_config(str(attrs.get("Image") or config["Image"]))
        if defaults is not None:
            drop_image_defaults(config, defaults, keep_env=lkg is not None)
    current = list(config.get("Env") or [])
    # The record holds masked secrets (never stored): they come back from the container.
    env = unmask_env(lkg["env"], current) if lkg and lkg.get("env") is not None else current
    config["Env"] = merge_env(env, args.get("env") or {})
    for resources in ((lkg or {}).get("config"), args.get("config")):
        apply_resources(host, resources or {})
    host["Binds"] = reattached_binds(attrs)
    host["PortBindings"] = pinned_ports(attrs)
    if config.get("Hostname") == attrs["Id"][:12]:
        del config["Hostname"]  # Docker's default (the old ID): let the new one get its own
    primary = primary_network(attrs)
    return {**config, "Image": image, "HostConfig": host,
            "NetworkingConfig": {"EndpointsConfig": primary} if primary else {}}


def drop_image_defaults(config: dict[str, Any], image: Mapping[str, Any], keep_env: bool) -> None:
    """Forget what the old image gave the container, so that the new image's defaults apply."""
    for key in _IMAGE_DEFAULTS:
        if key in config and config[key] == image.get(key):
            del config[key]
    labels = image.get("Labels") or {}
    config["Labels"] = {key: value for key, value in (config.get("Labels") or {}).items()
                        if labels.get(key) != value}
    if not keep_env:
        inherited = set(image.get("Env") or [])
        config["Env"] = [entry for entry in config.get("Env") or [] if entry not in inherited]


def apply_resources(host: dict[str, Any], resources: Mapping[str, Any]) -> None:
    """memory / memory_swap (bytes, -1 unlimited) / cpus onto a HostConfig."""
    if resources.get("memory") is not None:
        host["Memory"] = int(resources["memory"])
        host["MemorySwap"] = int(resources.get("memory_swap") or resources["memory"])
    elif resources.get("memory_swap") is not None:
        host["MemorySwap"] = int(resources["memory_swap"])
    if resources.get("cpus") is not None:
        host["NanoCpus"] = int(float(resources["cpus"]) * 1e9)
        host["CpuQuota"] = host["CpuPeriod"] = 0  # Docker refuses both ways at once


SWARM_TASK_LABEL = "com.docker.swarm.task.id"
"""Label Docker puts on the container of a Swarm service's task."""


def storage_identity(client: docker.DockerClient, attrs: dict[str, Any]) -> list[str]:
    """The persistent storage a container runs on, as sorted `destination=kind:identity`:
    a named volume by name and creation time (`/app/models=volume:app-prod-models@2026-...`),
    a bind by its host path.

    A Swarm task's container (a replica of a service): volumes by name only. Each node
    creates the service's volumes for its replicas, so their creation times differ from
    replica to replica and from one node to another; a record taken on one replica must
    hold on the others.

    This is what makes two containers the same incarnation for last-known-good. Not the
    container id: every recreate changes it, among them the bad deploy a rollback undoes.
    What a snapshot's environment and config files point at (model_path, a converted model)
    lives on these volumes; a volume removed and created again under the same name is
    another one (its files came back from the image), and a snapshot taken on the old one
    may name files the new one does not hold.
    """
    found = []
    replica = SWARM_TASK_LABEL in ((attrs.get("Config") or {}).get("Labels") or {})
    for mount in attrs.get("Mounts") or []:
        where = str(mount.get("Destination"))
        if mount.get("Type") == "volume" and mount.get("Name") and replica:
            found.append(f"{where}=volume:{mount['Name']}")
        elif mount.get("Type") == "volume" and mount.get("Name"):
            try:
                created = client.volumes.get(mount["Name"]).attrs.get("CreatedAt") or "?"
            except docker.errors.NotFound:
                created = "gone"
            found.append(f"{where}=volume:{mount['Name']}@{created}")
        elif mount.get("Type") == "bind":
            found.append(f"{where}=bind:{mount.get('Source')}")
    return sorted(found)


def reattached_binds(attrs: dict[str, Any]) -> list[str]:
    """The container's binds plus every volume mounted elsewhere (anonymous ones too),
    by name, so the new container sees the same files (e.g. /app/models)."""
    host = attrs["HostConfig"]
    binds = list(host.get("Binds") or [])
    covered = {bind.split(":")[1] for bind in binds if bind.count(":") >= 1}
    covered |= {mount.get("Target") for mount in host.get("Mounts") or []}
    for mount in attrs.get("Mounts") or []:
        if mount.get("Type") == "volume" and mount.get("Destination") not in covered:
            mode = "rw" if mount.get("RW", True) else "ro"
            binds.append(f"{mount['Name']}:{mount['Destination']}:{mode}")
    return binds


def pinned_ports(attrs: dict[str, Any]) -> dict[str, list[dict[str, str]]]:
    """PortBindings as before, each host port fixed to the one Docker had picked (so the
    target's base_url still answers); host IPs (127.0.0.1) kept."""
    actual = (attrs.get("NetworkSettings") or {}).get("Ports") or {}
    pinned: dict[str, list[dict[str, str]]] = {}
    for port, bindings in (attrs["HostConfig"].get("PortBindings") or {}).items():
        pinned[port] = [_pin(binding, actual.get(port) or []) for binding in bindings or []]
    return pinned


def _pin(binding: dict[str, str], actual: list[dict[str, str]]) -> dict[str, str]:
    host_ip = binding.get("HostIp") or ""
    if binding.get("HostPort") or not actual:
        return {"HostIp": host_ip, "HostPort": binding.get("HostPort") or ""}
    same_ip = [item for item in actual if item.get("HostIp") == host_ip] or actual
    return {"HostIp": host_ip, "HostPort": same_ip[0].get("HostPort") or ""}


def _endpoint(attrs: dict[str, Any], network: str) -> dict[str, Any]:
    settings = attrs["NetworkSettings"]["Networks"][network]
    aliases = [alias for alias in settings.get("Aliases") or [] if alias != attrs["Id"][:12]]
    endpoint: dict[str, Any] = {}
    if aliases:
        endpoint["Aliases"] = aliases
    for key in ("IPAMConfig", "Links"):
        if settings.get(key):
            endpoint[key] = settings[key]
    return endpoint


def primary_network(attrs: dict[str, Any]) -> dict[str, Any]:
    """EndpointsConfig for the network the container was created on (aliases kept)."""
    mode = attrs["HostConfig"].get("NetworkMode") or ""
    networks = (attrs.get("NetworkSettings") or {}).get("Networks") or {}
    if mode not in networks or mode in ("bridge", "host", "none"):
        return {}
    return {mode: _endpoint(attrs, mode)}


def extra_networks(attrs: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(network, connect kwargs) for the networks the container joined after creation."""
    mode = attrs["HostConfig"].get("NetworkMode") or ""
    networks = (attrs.get("NetworkSettings") or {}).get("Networks") or {}
    out = []
    for network in networks:
        if network == mode or (mode == "default" and network == "bridge"):
            continue
        endpoint = _endpoint(attrs, network)
        ipam = endpoint.get("IPAMConfig") or {}
        out.append((network, {"aliases": endpoint.get("Aliases"),
                              "links": endpoint.get("Links"),
                              "ipv4_address": ipam.get("IPv4Address"),
                              "ipv6_address": ipam.get("IPv6Address")}))
    return out


def stop_timeout(attrs: dict[str, Any]) -> int:
    value = attrs["Config"].get("StopTimeout")
    return int(value) if value is not None else defaults.DOCKER_STOP_TIMEOUT_S
