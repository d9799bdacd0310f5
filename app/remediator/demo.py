"""`make demo`: break app-prod the way production breaks, and watch the loop repair it.

Faults are injected from outside the app (files, modes, limits, config), never by a switch
inside it. The watcher prints each change as it happens: app health, the alert's state in
Prometheus, Remediator's execution and its steps, and the time from fault to healthy.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import docker
import requests

__all__ = ["FAULTS", "inject_fault", "run_demo"]


def _missing_file(box: Any) -> None:
    box.exec_run(["rm", "-f", "/app/models/best_model.pth"], user="root")
    box.restart(timeout=10)


FAULTS: dict[str, Callable[[Any], None]] = {
    "missing-file": _missing_file,
}
"""Scenario name → how to inject it into a running container."""


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


def run_demo(client: docker.DockerClient, scenario: str, api: Callable[[str], Any], *,
             prometheus_url: str, app_url: str, timeout: float = 600.0) -> float:
    """Inject, then print the loop until app-prod is healthy again; returns fault→healthy s."""
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
