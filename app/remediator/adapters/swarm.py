"""A Swarm service as a target: the docker.* actions on the alerting replica, or the service.

The alert's `instance` label picks the replica: a running task whose name (`svc.1`), ID,
container ID or hostname is the label's host part, else the one whose container publishes
the label's port (mode=host). A service with one running replica needs no label.

- Read and in-container actions (inspect, logs, stats, exec, read_file, put_file, copy)
  act on that task's container, as on any container.
- docker.restart is `docker service update --force` of the service, not a `docker restart`
  of the task's container. Restarting a task's container behind Swarm's back is not in
  place: the agent sees the container exit and may replace the task at the same time, so
  two containers race for the replica's host port (seen on this project's test swarm).
  A forced update is Swarm's own restart: deterministic, one replica at a time as the
  service's update_config says (with its failure action), and checked below. What the fix
  put in the named volumes (a restored model) is kept; what it wrote into the container's
  own filesystem is not (keep such files on a volume or in a Swarm config).
- docker.update is a service update of its resource limits (memory, cpus; Swarm has no
  swap limit) and memory reservation (Swarm's: for scheduling, not the container's soft
  limit), docker.recreate a service update of image and environment. With
  `last_known_good: true` it is a service update to the recorded last-known-good (image
  id and environment, masked secrets taken from the current spec), never `service
  rollback`: Swarm's PreviousSpec is whatever the last update replaced (a forced restart
  or a scale after a bad deploy makes the bad image "previous"), and a second rollback
  swaps back. The record must be of the same storage (see storage_identity) and name
  another image than the one running; its config files are not written (a replica's own
  filesystem is not kept: see above).
- After a service update, the step waits for the rollout and checks every replica it
  touched: each desired-running task running, none unhealthy. A rollout that paused or
  rolled back, or a replica that did not come up, fails the step.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

import docker
import docker.errors
from docker.models.containers import Container

from remediator.adapters.docker_runtime import DockerActions, host_cpus, merge_env
from remediator.core import defaults
from remediator.core.redact import unmask_env
from remediator.core.targets import Target
from remediator.errors import ActionFailed, ActionTimeout, TargetNotFound

__all__ = ["SwarmActions", "pick_task"]

log = logging.getLogger("remediator.swarm")


def _host_and_port(instance: str) -> tuple[str, str]:
    host, _, port = instance.rpartition(":")
    return (host, port) if host and port.isdigit() else (instance, "")


def pick_task(service: str, tasks: Sequence[Mapping[str, Any]], instance: str | None,
              published: Mapping[str, set[str]] | None = None) -> Mapping[str, Any]:
    """The running task of `service` the alert's `instance` names (see the module doc).

    `published` maps a container ID to the host ports it publishes. Raises TargetNotFound
    saying which replicas there are when none (or several) match.
    """
    running = [t for t in tasks if t.get("DesiredState") == "running"
               and (t.get("Status") or {}).get("State") == "running"]
    # A replica whose container started and awaits its first healthcheck is `starting`.
    running = running or [t for t in tasks if t.get("DesiredState") == "running" and _cid(t)
                          and (t.get("Status") or {}).get("State") == "starting"]
    if not running:
        raise TargetNotFound(f"Swarm service {service!r} has no running replica")
    if not instance:
        if len(running) == 1:
            return running[0]
        raise TargetNotFound(f"Swarm service {service!r} has {len(running)} replicas and the "
                             "alert has no instance label to pick one")
    host, port = _host_and_port(instance)
    by_name = [t for t in running if host in _names(service, t)]
    if len(by_name) == 1:
        return by_name[0]
    by_port = [t for t in running if port and port in (published or {}).get(_cid(t), set())]
    if len(by_port) == 1:
        return by_port[0]
    names = ", ".join(sorted(f"{service}.{t.get('Slot')}" for t in running))
    raise TargetNotFound(f"no running replica of Swarm service {service!r} matches the "
                         f"alert's instance {instance!r} (replicas: {names})")


def _cid(task: Mapping[str, Any]) -> str:
    return str(((task.get("Status") or {}).get("ContainerStatus") or {}).get("ContainerID")
               or "")


def _names(service: str, task: Mapping[str, Any]) -> set[str]:
    cid = _cid(task)
    names = {f"{service}.{task.get('Slot')}", str(task.get("ID") or ""), cid, cid[:12]}
    names.add(str(((task.get("Spec") or {}).get("ContainerSpec") or {}).get("Hostname") or ""))
    return names - {""}


class SwarmActions(DockerActions):
    """docker.* actions for Swarm service targets, on the same client as `base`."""

    def __init__(self, base: DockerActions) -> None:
        super().__init__(lkg_provider=base.lkg_provider, clock=base.clock)
        self.base = base
        self._local = threading.local()  # the step's deadline, per execution thread

    @property
    def client(self) -> docker.DockerClient:
        return self.base.client

    # -- the replica ------------------------------------------------------------------------
    def _service(self, target: Target) -> dict[str, Any]:
        name = str(target.swarm_service)
        try:
            service: dict[str, Any] = self.client.api.inspect_service(name)
        except docker.errors.NotFound:
            raise TargetNotFound(f"Swarm service {name!r} of target {target.name!r} not "
                                 f"found on {target.engine}") from None
        return service

    def _tasks(self, service_id: str) -> list[dict[str, Any]]:
        tasks: list[dict[str, Any]] = self.client.api.tasks(filters={"service": service_id})
        return tasks

    def _published(self, tasks: Sequence[Mapping[str, Any]]) -> dict[str, set[str]]:
        """Host ports each task's container publishes (those on this engine)."""
        out: dict[str, set[str]] = {}
        for task in tasks:
            cid = _cid(task)
            if not cid:
                continue
            try:
                ports = self.client.api.inspect_container(cid)["NetworkSettings"]["Ports"]
            except docker.errors.NotFound:
                continue
            out[cid] = {str(b.get("HostPort")) for bindings in (ports or {}).values()
                        for b in bindings or []}
        return out

    def call(self, action: str, args: dict[str, Any], target: Target,
             timeout: float) -> dict[str, Any]:
        self._local.deadline = self.clock() + timeout * defaults.SWARM_REPLICA_WAIT_SHARE
        return super().call(action, args, target, timeout)

    def task(self, target: Target) -> Mapping[str, Any]:
        """The alerting replica's task. While the service has none running but one on the
        way (Swarm replacing a task that exited), wait for it, within the step's time."""
        deadline = getattr(self._local, "deadline", 0.0)
        while True:
            tasks = self._tasks(self._service(target)["ID"])
            try:
                return pick_task(str(target.swarm_service), tasks, target.instance,
                                 self._published(tasks))
            except TargetNotFound:
                # A replacement waits out the restart delay as desired state `ready`.
                coming = any(t.get("DesiredState") in ("ready", "running") and
                             (t.get("Status") or {}).get("State") != "running" for t in tasks)
                if not coming or self.clock() >= deadline:
                    raise
            time.sleep(defaults.SWARM_POLL_S)

    def container(self, target: Target) -> Container:
        task = self.task(target)
        try:
            return self.client.containers.get(_cid(task))
        except docker.errors.NotFound:
            raise TargetNotFound(
                f"replica {target.swarm_service}.{task.get('Slot')} runs on node "
                f"{task.get('NodeID')}, whose containers {target.engine} does not run: point "
                "the target's docker_host at that node's engine") from None

    # -- docker.inspect adds the replica -------------------------------------------------------
    def do_inspect(self, args: dict[str, Any], target: Target, timeout: float) -> dict[str, Any]:
        task = self.task(target)
        out = super().do_inspect(args, target, timeout)
        out.update(service=target.swarm_service, task_id=task.get("ID"),
                   slot=task.get("Slot"))
        return out

    # -- mutating ------------------------------------------------------------------------------
    def do_restart(self, args: dict[str, Any], target: Target, timeout: float) -> dict[str, Any]:
        """`service update --force`, then every replica checked (the module doc says why
        not a container restart). The service's own stop grace period applies."""
        deadline = self.clock() + timeout
        service = self._service(target)
        spec = service["Spec"]
        template = spec["TaskTemplate"]
        template["ForceUpdate"] = int(template.get("ForceUpdate") or 0) + 1
        self._update(service, spec)
        replicas = self._converge(target, deadline, _started(service))
        return {"output": f"service update --force {target.swarm_service}: "
                          f"{_describe(replicas)}", "replicas": replicas}

    def do_update(self, args: dict[str, Any], target: Target, timeout: float) -> dict[str, Any]:
        """A service update of the resource limits (every replica is replaced)."""
        deadline = self.clock() + timeout
        if all(args.get(key) is None for key in ("memory", "cpus", "memory_reservation")):
            if args.get("memory_swap") is not None:
                raise ActionFailed("docker.update: a Swarm service has no swap limit; give "
                                   "memory, memory_reservation or cpus")
            raise ActionFailed("docker.update: nothing to change (memory, memory_reservation "
                               "or cpus)")
        service = self._service(target)
        spec = service["Spec"]
        _set_limits(spec, args)
        self._update(service, spec)
        replicas = self._converge(target, deadline, _started(service))
        host = self.container(target).attrs["HostConfig"]
        # Swarm's reservation is for scheduling (the node must have it free), not the
        # container's soft limit: it lives in the service's spec, not in HostConfig.
        reserved = ((self._service(target)["Spec"]["TaskTemplate"].get("Resources") or {})
                    .get("Reservations") or {}).get("MemoryBytes")
        out = {"memory": host.get("Memory"), "memory_swap": host.get("MemorySwap"),
               "cpus": host_cpus(host), "memory_reservation": reserved, "replicas": replicas}
        out["output"] = (f"service update {target.swarm_service}: memory={out['memory']}, "
                         f"cpus={out['cpus']}; {_describe(replicas)}")
        return out

    def do_recreate(self, args: dict[str, Any], target: Target, timeout: float) -> dict[str, Any]:
        """A service update of image, env and resources (with last_known_good: true, to the
        recorded last-known-good); then the rollout is checked."""
        deadline = self.clock() + timeout
        service = self._service(target)
        spec = service["Spec"]
        container = spec["TaskTemplate"]["ContainerSpec"]
        what = "service update"
        if args.get("last_known_good"):
            lkg = self._last_known_good(target)
            running = {container.get("Image"), self.container(target).attrs.get("Image")}
            if str(lkg["image"]) in running:
                raise ActionFailed(
                    f"docker.recreate: the last-known-good of {target.name} (recorded "
                    f"{lkg.get('recorded_at')}) is image {lkg['image']}, the one Swarm service "
                    f"{target.swarm_service} runs now: going back to it changes nothing. Deploy "
                    "a good image by hand (docker service update --image)")
            container["Image"] = str(lkg["image"])
            if lkg.get("env") is not None:
                # The record holds masked secrets (never stored): they come from the spec.
                container["Env"] = unmask_env(lkg["env"], list(container.get("Env") or []))
            what = "service update to the last-known-good"
        if args.get("image"):
            container["Image"] = str(args["image"])
        if args.get("env"):
            container["Env"] = merge_env(list(container.get("Env") or []),
                                         {str(k): str(v) for k, v in args["env"].items()})
        _set_limits(spec, args.get("config") or {})
        template = spec["TaskTemplate"]
        template["ForceUpdate"] = int(template.get("ForceUpdate") or 0) + 1
        self._update(service, spec)
        replicas = self._converge(target, deadline, _started(service))
        image = self._service(target)["Spec"]["TaskTemplate"]["ContainerSpec"].get("Image")
        return {"output": f"{what} {target.swarm_service} ({image}): {_describe(replicas)}",
                "image": image, "replicas": replicas}

    def _update(self, service: Mapping[str, Any], spec: Mapping[str, Any]) -> None:
        api = self.client.api
        api._raise_for_status(api._post_json(api._url("/services/{0}/update", service["ID"]),
                                             data=spec,
                                             params={"version": service["Version"]["Index"]}))

    def _converge(self, target: Target, deadline: float,
                  before: str | None) -> list[dict[str, Any]]:
        """Wait for the rollout we started (its UpdateStatus.StartedAt is not `before`) to
        end; every replica it left must be running and not unhealthy. Returns them; raises
        ActionFailed (paused, rolled back) or ActionTimeout saying which replica is not up."""
        last, resumed = "no look yet", False
        while True:
            service = self._service(target)
            status = service.get("UpdateStatus") or {}
            state = status.get("State") if _started(service) != before else None
            if state == "paused" or state == "rollback_paused":
                if resumed:
                    raise ActionFailed(f"Swarm service {target.swarm_service}: the rollout "
                                       f"{state}: {status.get('Message') or 'no message'}")
                # One failed task pauses a rollout (FailureAction: pause), e.g. a new task
                # that starts before the old one's host port is free: resume it once, as
                # `docker service update` does; a second pause is a real failure.
                log.warning("Swarm service %s: rollout paused (%s); resuming once",
                            target.swarm_service, status.get("Message"))
                self._update(service, service["Spec"])
                before, resumed = _started(service), True
                continue
            if state not in (None, "updating", "completed"):
                raise ActionFailed(f"Swarm service {target.swarm_service}: the rollout "
                                   f"{state}: {status.get('Message') or 'no message'}")
            if state == "completed":
                replicas = self._replicas(service)
                bad = [r for r in replicas if r["state"] != "running" or
                       r["health"] == "unhealthy"]
                if replicas and not bad:
                    return replicas
                last = _describe(bad or replicas)
            else:
                last = f"rollout {state or 'not started'}"
            if self.clock() >= deadline:
                raise ActionTimeout(f"Swarm service {target.swarm_service}: not every replica "
                                    f"came up within the step timeout ({last})")
            time.sleep(defaults.SWARM_POLL_S)

    def _replicas(self, service: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The desired-running tasks; one made from an older spec counts as not yet up."""
        out = []
        wanted = _spec_key(service["Spec"]["TaskTemplate"])
        for task in self._tasks(service["ID"]):
            if task.get("DesiredState") != "running":
                continue
            current = _spec_key(task.get("Spec") or {}) == wanted
            health = None
            if _cid(task):
                try:
                    state = self.client.api.inspect_container(_cid(task))["State"]
                    health = (state.get("Health") or {}).get("Status")
                except docker.errors.NotFound:
                    health = None
            out.append({"task": task.get("ID"), "slot": task.get("Slot"),
                        "container": _cid(task)[:12], "health": health,
                        "state": (task.get("Status") or {}).get("State") if current
                        else "old spec"})
        return out


def _spec_key(template: Mapping[str, Any]) -> tuple[Any, ...]:
    """What a rollout changes in a task's spec: a task showing the service's is new."""
    container = template.get("ContainerSpec") or {}
    return (template.get("ForceUpdate") or 0, container.get("Image"),
            tuple(container.get("Env") or ()), repr(template.get("Resources") or {}))


def _started(service: Mapping[str, Any]) -> str | None:
    started = (service.get("UpdateStatus") or {}).get("StartedAt")
    return str(started) if started else None


def _set_limits(spec: dict[str, Any], args: Mapping[str, Any]) -> None:
    """memory / cpus limits and memory_reservation (`--reserve-memory`) onto the spec."""
    resources = spec["TaskTemplate"].setdefault("Resources", {})
    limits = resources.setdefault("Limits", {})
    if args.get("memory") is not None:
        limits["MemoryBytes"] = int(args["memory"])
    if args.get("cpus") is not None:
        limits["NanoCPUs"] = int(float(args["cpus"]) * 1e9)
    if args.get("memory_reservation") is not None:
        resources.setdefault("Reservations", {})["MemoryBytes"] = int(args["memory_reservation"])


def _describe(replicas: Sequence[Mapping[str, Any]]) -> str:
    return ", ".join(f"slot {r['slot']} {r['state']}"
                     + (f" ({r['health']})" if r.get("health") else "")
                     for r in replicas) or "no replica"

