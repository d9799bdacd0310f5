"""`make demo`: break app-prod the way production breaks, and watch the loop repair it.

Faults are injected from outside the app (files, modes, limits, config, image), never by a
switch inside it; memory growth alone needs the app's help (MODEL_DEBUG_FAULTS=1, off by
default). `make demo SCENARIO=<name>` takes any name of FAULTS. The watcher prints each
change as it happens: app health, the alert's state in Prometheus, Remediator's execution
and its steps, and the time from fault to healthy. The integration tests inject with these
same functions (tests/harness/faults.py).
"""

from __future__ import annotations

import io
import json
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import docker

from remediator.adapters.http import HttpClient
from remediator.core.clock import parse_iso
from remediator.errors import Unreachable

__all__ = ["ALERT_OF", "FAULTS", "SCENARIO_OF", "DemoFailed", "DemoResult", "app_alerts",
           "drift", "inject_fault", "measure_load_cpu", "run_demo", "wait_alerts_clear"]

MODELS = "/app/models"
PRIMARY = f"{MODELS}/best_model.pth"
"""The primary model the image ships; every file fault below breaks this one."""
BACKUP = "/backup/models"
CONFIG = "/app/config/model.yml"
WITHOUT_PILLOW = "mobile-multimodal:without-pillow"
"""The image scenario 6 deploys: the app's image with one dependency uninstalled."""


def _root(box: Any, *cmd: str) -> str:
    """Run a command as root in the container; fail loudly (an injector that silently did
    nothing would make the demo, and the tests, prove nothing)."""
    result = box.exec_run(list(cmd), user="root")
    output = result.output.decode("utf-8", "replace")
    if result.exit_code != 0:
        raise RuntimeError(f"injecting the fault: {' '.join(cmd)} exited {result.exit_code}: "
                           f"{output.strip()}")
    return str(output)


def _write(box: Any, path: str, text: str, uid: int = 1000, gid: int = 1000) -> None:
    """Write a file into the container as `docker cp` does (owner appuser by default)."""
    folder, name = path.rsplit("/", 1)
    data = text.encode()
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.uid, info.gid, info.mtime = len(data), 0o644, uid, gid, time.time()
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        tar.addfile(info, io.BytesIO(data))
    if not box.put_archive(folder, archive.getvalue()):
        raise RuntimeError(f"injecting the fault: could not write {path}")


def _corrupt(box: Any, path: str) -> None:
    """64 zero bytes in the middle of the weights: same size, same zip layout, bad CRC."""
    _root(box, "dd", "if=/dev/zero", f"of={path}", "bs=1", "seek=600000", "count=64",
          "conv=notrunc", "status=none")


# -- the runbook's scenarios, each as production would break: then the app restarts -------
def _missing_file(box: Any) -> None:
    """Scenario 1: the model file is gone (a bad deploy, a cleanup script)."""
    _root(box, "rm", "-f", PRIMARY)
    box.restart(timeout=10)


def _corrupted_file(box: Any) -> None:
    """Scenario 1: the model file's bytes changed on disk."""
    _corrupt(box, PRIMARY)
    box.restart(timeout=10)


def _corrupted_backup(box: Any) -> None:
    """Scenario 1, and the runbook's "data corruption is suspected": the backup is bad too."""
    _corrupt(box, PRIMARY)
    _corrupt(box, f"{BACKUP}/best_model.pth")
    box.restart(timeout=10)


def _out_of_memory(box: Any) -> None:
    """Scenario 2: a memory limit too small to load the model (the kernel OOM-kills it).

    Docker cannot lower a running container's limit below what it uses, so: stop, lower,
    start, as a redeploy with a smaller mem_limit would.
    """
    box.stop(timeout=10)
    box.update(mem_limit="120m", memswap_limit="120m")
    box.start()


def _cuda(box: Any) -> None:
    """Scenario 3: config/model.yml asks for a GPU this host does not have."""
    _write(box, CONFIG, "model_path: best_model.pth\nfallback_model: int2_quantized\n"
                        "device: cuda\nload_timeout: 120s\n")
    box.restart(timeout=10)


def _permissions(box: Any) -> None:
    """Scenario 4: the model files lose their modes and owner (a root-run copy, a chmod)."""
    _root(box, "chmod", "000", PRIMARY)
    _root(box, "chown", "root:root", f"{MODELS}/int2_quantized.pth")
    _root(box, "chmod", "600", f"{MODELS}/int2_quantized.pth")
    box.restart(timeout=10)


OLD_FORMAT = ("import torch; from mobile_multimodal import MobileMultiModalLLM as M; "
              f"m = M.from_pretrained('{PRIMARY}'); "
              f"torch.save(m.network.state_dict(), '{PRIMARY}')")
"""What an older release wrote: `torch.save(model.state_dict())` (checkpoint format 0)."""


def _old_format(box: Any) -> None:
    """Scenario 5: an older release's checkpoint lands in the model folder."""
    result = box.exec_run(["python", "-c", OLD_FORMAT])
    if result.exit_code != 0:
        raise RuntimeError(f"injecting the fault: {result.output.decode(errors='replace')}")
    box.restart(timeout=10)


def _missing_dependency(box: Any) -> None:
    """Scenario 6: a new image that lacks a package (Pillow) is deployed over app-prod."""
    from remediator.adapters.docker_runtime import DockerActions
    from remediator.core.targets import Target

    client = box.client
    dockerfile = (f"FROM {box.attrs['Config']['Image']}\nUSER root\n"
                  "RUN pip uninstall -y pillow\nUSER appuser\n")
    client.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=WITHOUT_PILLOW, rm=True,
                        forcerm=True)
    deploy = Target(name=box.name, selector={}, container=box.name, base_url="http://unused")
    DockerActions(lambda: client).call("docker.recreate", {"image": WITHOUT_PILLOW}, deploy, 120)


def _invalid_config(box: Any) -> None:
    """Scenario 7: someone edits config/model.yml and gets a value wrong."""
    _write(box, CONFIG, "model_path: best_model.pth\nfallback_model: int2_quantized\n"
                        "device: auto\nload_timeout: soon\n")
    box.restart(timeout=10)


SLOW_LOAD_S = 66.0
"""How long slow-load makes the model load's own work take: over ModelLoadTime's 60 s, and
well under the app's load_timeout (120 s, when it abandons the load for the fallback), since
the app answers probes and scrapes from the same small share (about 90 s in practice)."""
CPU_PERIOD_US = 1_000_000
"""The longest CFS period Docker allows: quotas down to a thousandth of a CPU."""
CPU_USAGE = ["sh", "-c", "cat /sys/fs/cgroup/cpuacct/cpuacct.usage 2>/dev/null "
             "|| sed -n 's/^usage_usec \\([0-9]*\\)$/\\1000/p' /sys/fs/cgroup/cpu.stat"]
"""The container's CPU time in nanoseconds, from its own cgroup (v1, else v2)."""


def _cpu_seconds(box: Any) -> float:
    result = box.exec_run(CPU_USAGE)
    text = result.output.decode().strip()
    if result.exit_code != 0 or not text.isdigit():
        raise RuntimeError(f"injecting the fault: cannot read {box.name}'s CPU time from its "
                           f"cgroup ({text or result.exit_code})")
    return int(text) / 1e9


def measure_load_cpu(box: Any, timeout: float = 180.0) -> float:
    """CPU seconds the app spends loading its model on this machine: restart it, then its
    cgroup's CPU time from the first /model/health answer (LOADING) to READY."""
    box.restart(timeout=10)
    url = f"{_published_url(box)}/model/health"
    deadline, loading_at = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        state = (_get(url) or {}).get("state")
        if state == "LOADING" and loading_at is None:
            loading_at = _cpu_seconds(box)
        elif state == "READY":
            ready_at = _cpu_seconds(box)
            # READY before any answer (a very fast load): the whole start, an upper bound.
            return ready_at - (loading_at or 0.0)
        time.sleep(0.05)
    raise RuntimeError(f"injecting the fault: {box.name} did not load within {timeout:.0f}s "
                       "(measuring its load)")


def _published_url(box: Any) -> str:
    box.reload()
    ports = (box.attrs.get("NetworkSettings") or {}).get("Ports") or {}
    binding = (ports.get("8080/tcp") or [{}])[0]
    return f"http://127.0.0.1:{binding.get('HostPort') or 8080}"


def _slow_load(box: Any) -> None:
    """ModelLoadTime: a CPU quota far too small for the app (a `--cpus` typo), measured so
    that the load takes SLOW_LOAD_S on any machine.

    First the load's own CPU time on this machine (measure_load_cpu), then the share of a
    CPU that makes that work take SLOW_LOAD_S: twice as fast a machine gets half the share.
    The share stays under a quarter of a CPU (below any sane min_cpus, so it is starvation
    to the playbook too), at least a thousandth (Docker's smallest quota). The app restarts
    at full speed and the quota lands as soon as it answers with its load under way: the
    load crawls, the server's start (which is not the load) does not.
    """
    work = measure_load_cpu(box)
    share = min(0.25, max(0.001, work / SLOW_LOAD_S))
    box.restart(timeout=10)
    url, deadline = f"{_published_url(box)}/model/health", time.monotonic() + 120
    while (_get(url) or {}).get("state") != "LOADING":
        if time.monotonic() > deadline:
            raise RuntimeError(f"injecting the fault: {box.name} did not start loading "
                               "within 120s")
        time.sleep(0.02)
    box.update(cpu_period=CPU_PERIOD_US, cpu_quota=max(1000, int(share * CPU_PERIOD_US)))
    print(f"  slow-load: loading the model takes {work:.2f} CPU-seconds here (measured); "
          f"{box.name} now gets {share:.4f} of a CPU, so this load takes about "
          f"{work / share:.0f}s", flush=True)


GROW = ("import json, sys, urllib.request as u; "
        "req = u.Request('http://127.0.0.1:8080/debug/grow', data=json.dumps({'mb': "
        "int(sys.argv[1])}).encode(), headers={'Content-Type': 'application/json'}); "
        "print(u.urlopen(req, timeout=60).read().decode())")


def _memory_growth(box: Any) -> None:
    """ModelMemoryUsage: the serving process holds ever more memory, to 90% of its limit.

    Needs MODEL_DEBUG_FAULTS=1 (the app's one switch for this; off by default): a container
    started without it is recreated with it first.
    """
    if "MODEL_DEBUG_FAULTS=1" not in (box.attrs["Config"].get("Env") or []):
        from remediator.adapters.docker_runtime import DockerActions
        from remediator.core.targets import Target

        here = Target(name=box.name, selector={}, container=box.name, base_url="http://unused")
        DockerActions(lambda: box.client).call(
            "docker.recreate", {"env": {"MODEL_DEBUG_FAULTS": "1"}}, here, 120)
        box = box.client.containers.get(box.name)
        _wait_loaded(box)
    limit_mb = (box.attrs["HostConfig"].get("Memory") or 3 * 2**30) >> 20
    used_mb = json.loads(box.exec_run(
        ["python", "-c", "import urllib.request as u; print(u.urlopen("
         "'http://127.0.0.1:8080/model/health').read().decode())"]).output)["memory_usage_mb"]
    result = box.exec_run(["python", "-c", GROW, str(max(1, int(limit_mb * 0.9 - used_mb)))])
    if result.exit_code != 0:
        raise RuntimeError(f"injecting the fault: {result.output.decode(errors='replace')}")


def _wait_loaded(box: Any, timeout: float = 120.0) -> None:
    probe = ["python", "-c", "import json, urllib.request as u; print(json.load(u.urlopen("
             "'http://127.0.0.1:8080/health'))['status'])"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if box.exec_run(probe).output.decode().strip() == "healthy":
            return
        time.sleep(0.5)
    raise RuntimeError(f"{box.name} not healthy {timeout:.0f}s after recreating it")


FAULTS: dict[str, Callable[[Any], None]] = {
    "missing-file": _missing_file,
    "corrupted-file": _corrupted_file,
    "corrupted-backup": _corrupted_backup,
    "oom": _out_of_memory,
    "cuda": _cuda,
    "permissions": _permissions,
    "old-format": _old_format,
    "missing-dependency": _missing_dependency,
    "invalid-config": _invalid_config,
    "slow-load": _slow_load,
    "memory-growth": _memory_growth,
}
"""Scenario name → how to inject it into a running container, from outside the app."""

SCENARIO_OF: dict[str, str] = {
    "missing-file": "file_missing_or_corrupted", "corrupted-file": "file_missing_or_corrupted",
    "corrupted-backup": "file_missing_or_corrupted", "oom": "out_of_memory", "cuda": "cuda",
    "permissions": "permission_denied", "old-format": "model_format",
    "missing-dependency": "missing_dependency", "invalid-config": "configuration",
    "slow-load": "cpu_starved", "memory-growth": "near_limit",
}
"""Fault → the scenario the shipped playbooks should name for it."""


def drift(box: Any, image_env: list[str], memory: int, model: dict[str, Any]) -> list[str]:
    """How app-prod differs from what `make up` ships (empty: a demo can start from it).

    An earlier demo's fix can leave app-prod serving a converted file, on a raised memory
    limit or with an extra variable; a fault injected into the shipped file would then not
    break anything, and the demo would wait for an alert that never comes."""
    found = []
    if model.get("state") != "READY" or model.get("model_type") != "primary":
        found.append(f"/model/health is {model.get('state')} serving "
                     f"{model.get('model_type')}")
    if model.get("model_path") != PRIMARY:
        found.append(f"it serves {model.get('model_path')}, not {PRIMARY}")
    if model.get("checksum_ok") is False:
        found.append("its model files fail their checksums")
    host = box.attrs["HostConfig"]
    if host.get("Memory") != memory:
        found.append(f"its memory limit is {host.get('Memory')} bytes, not {memory}")
    if host.get("CpuQuota") or host.get("NanoCpus"):
        found.append("its CPU is limited")
    added = sorted(set(box.attrs["Config"].get("Env") or []) - set(image_env))
    if added:
        found.append(f"it was started with {', '.join(added)}")
    return found


def inject_fault(client: docker.DockerClient, container: str, scenario: str) -> float:
    """Inject `scenario` into `container`; returns the time.time() of the fault."""
    if scenario not in FAULTS:
        raise ValueError(f"unknown scenario {scenario!r}; known: {', '.join(sorted(FAULTS))}")
    started = time.time()
    FAULTS[scenario](client.containers.get(container))
    return started


@dataclass
class Watch:
    seen: set[str] = field(default_factory=set)
    started: float = field(default_factory=time.time)

    def say(self, key: str, message: str) -> None:
        if key not in self.seen:
            self.seen.add(key)
            print(f"  +{time.time() - self.started:6.1f}s  {message}", flush=True)


def _get(url: str, **kwargs: Any) -> Any:
    try:
        return HttpClient(timeout=3).get_json(url, any_status=True, **kwargs)
    except Unreachable:
        return None


def app_alerts(prometheus_url: str, job: str = "app-prod") -> list[str]:
    """`alertname state` of each of `job`'s alerts Prometheus holds (pending or firing)."""
    alerts = (_get(f"{prometheus_url}/api/v1/alerts") or {}).get("data", {}).get("alerts", [])
    return [f"{a['labels'].get('alertname')} {a.get('state')}" for a in alerts
            if a.get("labels", {}).get("job") == job]


def wait_alerts_clear(prometheus_url: str, timeout: float = 300.0, poll: float = 1.0) -> None:
    """Wait until app-prod has no alert pending or firing. A fault injected while the last
    one's alert still fires is that same alert to Alertmanager (same startsAt), which
    Remediator rightly takes for a repeat of an incident it already handled."""
    deadline, said = time.monotonic() + timeout, False
    while held := app_alerts(prometheus_url):
        if time.monotonic() > deadline:
            raise TimeoutError(f"app-prod's alerts did not clear in {timeout:.0f}s: "
                               f"{', '.join(held)}")
        if not said:
            print(f"Waiting for the last incident's alert to clear ({', '.join(held)}) ...",
                  flush=True)
            said = True
        time.sleep(poll)


ALERT_OF: dict[str, str] = {
    **{name: "ModelLoadFailure" for name in FAULTS},
    "slow-load": "ModelLoadTime", "memory-growth": "ModelMemoryUsage",
}
"""Fault → the alert monitoring/alerts.yml fires for it (what the demo waits for)."""


@dataclass
class DemoResult:
    """One demo run, in seconds from the fault; None for what did not happen."""

    scenario: str
    alert: str
    named: str | None = None          # the scenario Remediator's execution named
    firing_s: float | None = None     # fault → the alert firing in Prometheus
    fix_s: float | None = None        # fault → Remediator's first fix step started
    healthy_s: float | None = None    # fault → healthy again, the execution a success
    problem: str = ""                 # why it was not repaired by Remediator

    @property
    def repaired(self) -> bool:
        return self.healthy_s is not None and not self.problem

    def row(self) -> list[str]:
        def span(a: float | None, b: float | None) -> str:
            return f"{b - a:.1f}" if a is not None and b is not None else "-"
        return [self.scenario, self.alert, self.named or "-", span(0.0, self.firing_s),
                span(self.firing_s, self.fix_s), span(self.fix_s, self.healthy_s),
                span(0.0, self.healthy_s)]


class DemoFailed(RuntimeError):
    """The demo's fault was not repaired by Remediator; the message says why."""

    def __init__(self, message: str, result: DemoResult) -> None:
        super().__init__(message)
        self.result = result


def run_demo(client: docker.DockerClient, scenario: str, api: Callable[[str], Any], *,
             prometheus_url: str, app_url: str, timeout: float = 600.0) -> DemoResult:
    """Inject, then print the loop until app-prod is healthy again, fixed by Remediator.

    Raises DemoFailed as soon as Remediator decides not to act (budget spent, a re-fire
    of an incident it handled, a human's claim: printed with the escalation it sent), when
    its execution ends without success, or at `timeout`, saying what was waited for."""
    if scenario not in FAULTS:
        raise ValueError(f"unknown scenario {scenario!r}; known: {', '.join(sorted(FAULTS))}")
    result = DemoResult(scenario, ALERT_OF[scenario])
    wait_alerts_clear(prometheus_url)
    known = {item["id"] for item in api("/api/v1/executions?limit=200")["items"]}
    incidents = {item["id"]: _decision_state(item)
                 for item in api("/api/v1/incidents?limit=200")["items"]}
    print(f"Injecting fault {scenario!r} into app-prod (expecting {result.alert}) ...",
          flush=True)
    watch = Watch(started=inject_fault(client, "app-prod", scenario))
    deadline = time.monotonic() + timeout
    health: dict[str, Any] = {}
    healthy_since: float | None = None
    while time.monotonic() < deadline:
        health = _get(f"{app_url}/health") or {}
        watch.say(f"health:{health.get('status')}", f"app-prod /health: {health or 'down'}")
        if health.get("status") == "healthy":
            healthy_since = healthy_since or time.time() - watch.started
        else:
            healthy_since = None
        for alert in (_get(f"{prometheus_url}/api/v1/alerts") or {}).get("data", {}).get(
                "alerts", []):
            name = alert["labels"].get("alertname")
            watch.say(f"alert:{name}:{alert['state']}", f"Prometheus: {name} {alert['state']}")
            if name == result.alert and alert["state"] == "firing" and result.firing_s is None:
                result.firing_s = time.time() - watch.started
        _refused(api, incidents, result, watch)
        execution = _report_executions(api, known, watch, result.alert)
        if execution is not None:
            _follow(api, execution, result, watch)
        if health.get("status") == "healthy" and execution is not None \
                and execution["state"] == "finished":
            result.healthy_s = time.time() - watch.started
            watch.say("fixed", f"healthy again, fixed by Remediator: {result.healthy_s:.1f}s "
                               "from fault to healthy")
            return result
        time.sleep(1)
    raise DemoFailed(_timed_out(result, timeout, health, healthy_since, known, api), result)


def _decision_state(incident: dict[str, Any]) -> tuple[Any, ...]:
    return (incident.get("reopened"), incident.get("claimed_by"), incident.get("note"),
            incident.get("notices"))


def _refused(api: Callable[[str], Any], before: dict[int, tuple[Any, ...]],
             result: DemoResult, watch: Watch) -> None:
    """Raise DemoFailed, printing the decision and its escalations, as soon as Remediator
    records an incident of the expected alert it will not act on."""
    for incident in api("/api/v1/incidents?limit=20")["items"]:
        if incident.get("alertname") != result.alert:
            continue
        old = before.get(incident["id"])
        if old == _decision_state(incident):
            continue
        before[incident["id"]] = _decision_state(incident)
        if old is None and (incident.get("status") == "resolved" or _epoch(
                incident.get("startsAt") or "9999-01-01") < watch.started - 5):
            continue  # news of an earlier fault (its resolved notice), not of this one
        why = incident.get("note") or (f"claimed by {incident['claimed_by']}"
                                       if incident.get("claimed_by") else None)
        if not why and old is not None and old[0] == incident.get("reopened") \
                and incident.get("fixed_at") and incident.get("status") == "firing" \
                and _epoch(incident.get("startsAt") or "9999-01-01") < watch.started:
            why = (f"the alert is a repeat of incident {incident['id']}, fixed at "
                   f"{incident['fixed_at']} (same fingerprint and startsAt); nothing started")
        if not why:
            continue  # a new or reopened incident Remediator acts on
        again = " (a re-fire: incident reopened)" if incident.get("reopened") else ""
        watch.say(f"refused:{incident['id']}", f"Remediator will not act on incident "
                                               f"{incident['id']}{again}: {why}")
        sent = _escalations(api, int(incident["id"]))
        for line in sent or ["no escalation sent yet (GET /api/v1/notifications)"]:
            print(f"           escalation: {line}", flush=True)
        result.problem = f"Remediator did not act on incident {incident['id']}: {why}"
        raise DemoFailed(result.problem, result)


def _escalations(api: Callable[[str], Any], incident_id: int, wait: float = 10.0) -> list[str]:
    """What Remediator sent about `incident_id` (waiting a little: it is queued right after
    the decision), one line each."""
    deadline = time.monotonic() + wait
    while True:
        sent = [f"{n['team']} ({n['level']}, rule {n.get('rule') or '-'}, {n['status']}): "
                f"{n.get('reason') or ''}"
                for n in api("/api/v1/notifications?limit=50")["items"]
                if n.get("incident_id") == incident_id and n.get("kind") == "trigger"]
        if sent or time.monotonic() > deadline:
            return sent
        time.sleep(0.5)


def _follow(api: Callable[[str], Any], execution: dict[str, Any], result: DemoResult,
            watch: Watch) -> None:
    """Note the execution's scenario and first fix step; fail on an unsuccessful end."""
    result.named = execution.get("scenario") or result.named
    fix_starts = [_epoch(s["started_at"]) for s in execution["steps"]
                  if s["phase"] == "fix" and s.get("started_at") and s["status"] != "skipped"
                  and s["action"] != "notify"]
    if fix_starts and result.fix_s is None:
        result.fix_s = min(fix_starts) - watch.started
    if execution["state"] == "finished" and execution["outcome"] != "success":
        sent = _escalations(api, int(execution["incident_id"])) \
            if execution.get("incident_id") else []
        for line in sent or ["none sent yet (GET /api/v1/notifications)"]:
            print(f"           escalation: {line}", flush=True)
        result.problem = (f"Remediator's execution {execution['id']} ended "
                          f"{execution['outcome']} (scenario {execution['scenario']}): "
                          f"{execution.get('error') or 'see remediator executions show'}")
        raise DemoFailed(result.problem, result)


def _epoch(text: str) -> float:
    return parse_iso(text).timestamp()


def _timed_out(result: DemoResult, timeout: float, health: dict[str, Any],
               healthy_since: float | None, known: set[int],
               api: Callable[[str], Any]) -> str:
    """What the demo waited for and did not see, in `timeout` seconds: the alert, an
    execution, or health. Never calls a healthy app unhealthy."""
    now = (f"app-prod /health is {health.get('status') or 'unreachable'}"
           + (f" (since +{healthy_since:.1f}s)" if healthy_since is not None else ""))
    if result.firing_s is None:
        result.problem = (f"{result.alert} did not fire within {timeout:.0f}s of the fault "
                          f"(waited for it in Prometheus' /api/v1/alerts); {now}")
    elif not [e for e in api("/api/v1/executions?limit=20")["items"] if e["id"] not in known]:
        result.problem = (f"{result.alert} fired at +{result.firing_s:.1f}s but Remediator "
                          f"started no execution within {timeout:.0f}s of the fault; {now}")
    elif health.get("status") != "healthy":
        result.problem = f"app-prod not healthy {timeout:.0f}s after the fault; {now}"
    else:
        result.problem = (f"Remediator's execution did not finish within {timeout:.0f}s of "
                          f"the fault; {now}")
    return result.problem


def _report_executions(api: Callable[[str], Any], known: set[int], watch: Watch,
                       alert: str) -> dict[str, Any] | None:
    """Print each new execution's progress; returns the newest new one for `alert` (None:
    none yet). Another alert's execution (a slow load also leaves the model unloaded for
    over a minute: ModelLoadFailure) is shown, and not taken for this demo's."""
    newest = None
    alerts = {i["id"]: i.get("alertname") for i in api("/api/v1/incidents?limit=50")["items"]}
    for ex in api("/api/v1/executions?limit=20")["items"]:
        if ex["id"] in known:
            continue
        other = alerts.get(ex.get("incident_id"), alert) != alert
        if not other:
            newest = newest or ex
        watch.say(f"ex:{ex['id']}", f"Remediator: execution {ex['id']} of {ex['playbook']} "
                                    f"on {ex['target']}"
                  + (f" (for {alerts.get(ex.get('incident_id'))}, not {alert}: "
                     "followed, not counted)" if other else ""))
        for step in ex["steps"]:
            if step["status"] != "running":
                watch.say(f"ex:{ex['id']}:{step['id']}",
                          f"  step {step['id']:<14} {step['action']:<18} {step['status']}")
        if ex["state"] == "finished":
            watch.say(f"ex:{ex['id']}:done", f"execution {ex['id']} finished: {ex['outcome']}"
                                            f" (scenario {ex['scenario']})")
    return newest
