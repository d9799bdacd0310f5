"""Building blocks for escalation tests: a settable clock, alerts, a scripted runtime, a
Service with a given policy and channel environment.

    clock = FakeClock()
    service = escalation_service(tmp_path, policy_from_yaml(POLICY), env, clock)
    alert_in(service, firing(T0))          # stored and turned into an incident + execution
    clock.advance(minutes=10)
    service.escalation.evaluate_open()
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path

import yaml

from remediator.core.config import RemediatorConfig
from remediator.core.escalation_eval import EscalationPolicy
from remediator.core.escalation_load import parse_escalation_policy
from remediator.core.targets import Target
from remediator.service.build import Service, build_service
from tests.support.fakes import T0, FakeClock, FakeRuntime, model_app

__all__ = [
    "PLAYBOOK",
    "ROUTING_KEY",
    "alert_in",
    "escalation_service",
    "firing",
    "policy_from_yaml",
    "resolved",
    "run_pending",
]

ROUTING_KEY = "R0ut1ngK3yF0rT3st5" + "x" * 14  # PagerDuty wants exactly 32 characters

PLAYBOOK = """
name: model-load-failure
match: {alertname: ModelLoadFailure}
escalation: {team: ml-team-lead, level: notify}
steps:
  - id: logs
    action: docker.logs
    phase: diagnose
    with: {since: 10m}
  - id: restore_model
    action: docker.copy
    phase: fix
    with: {src: /backup/models/best_model.pth, dest: /app/models/best_model.pth}
  - id: restart
    action: docker.restart
    phase: fix
  - id: health
    action: http.check
    phase: validate
    with: {path: /health, expect: {status: healthy, model_loaded: true}}
    on_failure: continue
  - id: still_failing
    phase: validate
    when: "steps.health.status in ['failed', 'timeout']"
    action: notify
    with: {team: ml-team-lead, reason: "Model still not healthy after the fix"}
"""
"""The runbook's shape in miniature: restore_model (fix) and health (validate)."""


def policy_from_yaml(text: str) -> EscalationPolicy:
    return parse_escalation_policy(yaml.safe_load(text), "<test policy>")


def escalation_service(tmp_path: Path, policy: EscalationPolicy, env: Mapping[str, str],
                       clock: FakeClock | None = None, runtime: FakeRuntime | None = None,
                       db_name: str = "remediator.db") -> Service:
    """A Service on ``tmp_path/db_name`` (same name → same store, as after a restart)."""
    books = tmp_path / "playbooks"
    books.mkdir(exist_ok=True)
    (books / "model_load_failure.yml").write_text(PLAYBOOK)
    target = Target(name="app-prod", selector={"service": "app-prod"}, container="app-test",
                    base_url="http://127.0.0.1:1")
    config = RemediatorConfig(targets=[target], max_runs_per_hour=5)
    service = build_service(config, db_path=tmp_path / db_name, playbooks_dir=books,
                            token="t", runtime=runtime or model_app(), policy=policy,
                            clock=clock or FakeClock(), notify_env=env)
    if service.escalation is not None:
        service.escalation.dispatcher.rand = lambda: 0.0  # backoff at its shortest: exact
    return service


def _payload(status: str, starts_at: datetime, fingerprint: str,
             labels: Mapping[str, str] | None,
             annotations: Mapping[str, str] | None = None) -> bytes:
    alert = {
        "status": status,
        "labels": {"alertname": "ModelLoadFailure", "service": "app-prod",
                   "instance": "app-prod:8080", "severity": "critical", **(labels or {})},
        "annotations": dict(annotations or {"summary": "Model failed to load"}),
        "startsAt": starts_at.isoformat().replace("+00:00", "Z"),
        "endsAt": "0001-01-01T00:00:00Z" if status == "firing"
        else (starts_at + timedelta(minutes=1)).isoformat().replace("+00:00", "Z"),
        "generatorURL": "", "fingerprint": fingerprint,
    }
    return json.dumps({"version": "4", "status": status, "receiver": "remediator",
                       "groupKey": "{}:{alertname=\"ModelLoadFailure\"}",
                       "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {},
                       "externalURL": "http://alertmanager", "truncatedAlerts": 0,
                       "alerts": [alert]}).encode()


def firing(starts_at: datetime = T0, fingerprint: str = "0023b7e32bfe951f",
           labels: Mapping[str, str] | None = None,
           annotations: Mapping[str, str] | None = None) -> bytes:
    return _payload("firing", starts_at, fingerprint, labels, annotations)


def resolved(starts_at: datetime = T0, fingerprint: str = "0023b7e32bfe951f") -> bytes:
    return _payload("resolved", starts_at, fingerprint, None)


def alert_in(service: Service, body: bytes) -> None:
    """As if Alertmanager posted ``body`` and the worker drained it."""
    service.store.add_inbox(body)
    service.worker.intake.drain()


def run_pending(service: Service) -> None:
    """Run every pending execution to its end, in this thread."""
    for row in service.store.executions_in_state("pending"):
        service.worker.run_execution(row)
