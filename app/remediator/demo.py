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
import requests

__all__ = ["FAULTS", "SCENARIO_OF", "app_alerts", "drift", "inject_fault", "run_demo",
           "wait_alerts_clear"]

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


def _slow_load(box: Any) -> None:
    """ModelLoadTime: a tenth of a CPU, so the next load (mostly importing torch) crawls."""
    box.update(cpu_period=100_000, cpu_quota=10_000)
    box.restart(timeout=10)


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
        return requests.get(url, timeout=3, **kwargs).json()
    except (requests.RequestException, ValueError):
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


def run_demo(client: docker.DockerClient, scenario: str, api: Callable[[str], Any], *,
             prometheus_url: str, app_url: str, timeout: float = 600.0) -> float:
    """Inject, then print the loop until app-prod is healthy again; returns fault→healthy s."""
    wait_alerts_clear(prometheus_url)
    known = {item["id"] for item in api("/api/v1/executions?limit=200")["items"]}
    print(f"Injecting fault {scenario!r} into app-prod ...", flush=True)
    watch = Watch(started=inject_fault(client, "app-prod", scenario))
    deadline = time.monotonic() + timeout
    healthy_at: float | None = None
    while time.monotonic() < deadline:
        health = _get(f"{app_url}/health") or {}
        watch.say(f"health:{health.get('status')}", f"app-prod /health: {health or 'down'}")
        for alert in (_get(f"{prometheus_url}/api/v1/alerts") or {}).get("data", {}).get(
                "alerts", []):
            name = alert["labels"].get("alertname")
            watch.say(f"alert:{name}:{alert['state']}", f"Prometheus: {name} {alert['state']}")
        done = _report_executions(api, known, watch)
        if health.get("status") == "healthy" and done and healthy_at is None:
            healthy_at = time.time() - watch.started
            watch.say("fixed", f"healthy again, fixed by Remediator: {healthy_at:.1f}s "
                               "from fault to healthy")
            break
        time.sleep(1)
    if healthy_at is None:
        raise TimeoutError(f"app-prod not healthy {timeout:.0f}s after the fault")
    return healthy_at


def _report_executions(api: Callable[[str], Any], known: set[int], watch: Watch) -> bool:
    finished = False
    for ex in api("/api/v1/executions?limit=20")["items"]:
        if ex["id"] in known:
            continue
        watch.say(f"ex:{ex['id']}", f"Remediator: execution {ex['id']} of {ex['playbook']} "
                                    f"on {ex['target']}")
        for step in ex["steps"]:
            if step["status"] != "running":
                watch.say(f"ex:{ex['id']}:{step['id']}",
                          f"  step {step['id']:<14} {step['action']:<18} {step['status']}")
        if ex["state"] == "finished":
            watch.say(f"ex:{ex['id']}:done", f"execution {ex['id']} finished: {ex['outcome']}"
                                            f" (scenario {ex['scenario']})")
            finished = finished or ex["outcome"] == "success"
    return finished
