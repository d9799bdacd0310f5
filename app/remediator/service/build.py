"""A running Remediator: config, store, playbooks, runtime, worker and metrics, wired once.

Its role (``remediator serve --role``): ``all`` runs everything; ``intake`` only takes
webhooks into the store (no worker, no leader duties, no Docker: readiness is the store);
``worker`` runs executions, the outbox and leader candidacy, and takes no webhooks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from remediator.adapters.ingest import GroupCommitWriter
from remediator.adapters.monitoring_auth import monitoring_client
from remediator.core.clock import Clock, utc_now
from remediator.core.config import RemediatorConfig
from remediator.core.escalation_eval import EscalationPolicy
from remediator.core.playbook import load_playbooks
from remediator.core.playbook_model import Playbook
from remediator.core.runner import Runtime
from remediator.core.targets import Target
from remediator.errors import RemediatorError, StoreError
from remediator.escalation import EscalationService, load_service_policy
from remediator.metrics import ServiceMetrics
from remediator.service.leases import Leases, default_replica_id
from remediator.service.reconcile import Reconciler
from remediator.service.worker import Worker
from remediator.store import Store, open_store

__all__ = ["Service", "build_service"]


@dataclass
class Service:
    config: RemediatorConfig
    store: Store
    playbooks: list[Playbook]
    worker: Worker
    metrics: ServiceMetrics
    token: str | None
    writer: GroupCommitWriter
    reconciler: Reconciler
    docker_ping: Any = None
    escalation: EscalationService | None = None
    docker_error: Callable[[], str | None] | None = None  # why docker_ping said no
    engine_states: Callable[[], dict[str, dict[str, Any]]] | None = None  # each engine
    role: str = "all"

    @property
    def leases(self) -> Leases:
        return self.worker.leases

    @property
    def takes_alerts(self) -> bool:
        """Whether this replica answers Alertmanager's webhook (not a `worker` one)."""
        return self.role != "worker"

    @property
    def runs_work(self) -> bool:
        """Whether this replica runs executions, the outbox and leader duties."""
        return self.role != "intake"

    def start(self) -> None:
        """Start the background parts: leases, the worker, then reconciliation with
        Alertmanager and escalation (an `intake` replica starts none of them: its webhook
        and the inbox writer are all it runs)."""
        if not self.runs_work:
            return
        self.leases.start()
        self.worker.start()
        self.reconciler.start()
        if self.escalation is not None:
            self.escalation.start()

    def set_paused(self, paused: bool) -> None:
        self.store.set_setting("paused", "1" if paused else "0")
        self.metrics.paused.set(1 if paused else 0)

    def refresh_gauges(self) -> None:
        self.metrics.leader.set(1 if self.leases.is_leader else 0)
        try:  # the database away: the gauges keep their last values, /metrics answers
            self.metrics.inbox_depth.set(self.store.inbox_depth())
            self.metrics.paused.set(1 if self.worker.paused else 0)
        except StoreError:
            pass
        if self.engine_states is not None and self.config.targets and self.runs_work:
            self.metrics.set_engines(self.engine_states())

    def replica(self) -> dict[str, Any]:
        """Who answers: this replica's id, role and whether it leads (/readyz)."""
        return {"id": self.leases.replica_id, "role": self.role,
                "leader": self.leases.is_leader}

    def readiness(self) -> dict[str, Any]:
        """What /readyz reports. Docker counts only when a target is declared: with none,
        nothing here would talk to the engine, so its absence cannot make us unready.
        With several engines, `engines` shows each; `docker` is false only when none
        answers (an engine that is down fails its own targets' steps, not the others')."""
        checks: dict[str, Any] = {"store": self.store.ping()}
        try:  # not asked when the ping failed: a second wait for a database that is away
            checks["paused"] = self.worker.paused if checks["store"] else None
        except StoreError:
            checks["store"] = False
        if not self.config.targets or not self.runs_work:
            return checks  # an intake replica needs the store only
        states = self.engine_states() if self.engine_states is not None else {}
        if not all(state["default"] for state in states.values()):  # a target names one
            checks["engines"] = states
            checks["docker"] = any(state["up"] for state in states.values())
            if not checks["docker"]:
                checks["docker_error"] = "; ".join(str(s["error"]) for s in states.values())
            return checks
        docker_ok = bool(self.docker_ping()) if self.docker_ping else True
        checks["docker"] = docker_ok
        if not docker_ok:  # say why, so an operator need not guess from the logs
            reason = self.docker_error() if self.docker_error else None
            checks["docker_error"] = reason or "the Docker engine did not answer the ping"
        return checks

    def close(self) -> None:
        if self.runs_work:
            self.reconciler.stop()
            self.worker.stop()
            if self.escalation is not None:
                self.escalation.stop()  # lets a send in flight finish and record its outcome
            self.leases.stop()  # gives the leader lease up: another replica leads at once
        self.writer.close()
        self.store.close()


class _NoRuntime:
    """An `intake` replica's runtime: it runs no step (no Docker needed)."""

    def call(self, action: str, args: dict[str, Any], target: Target,
             timeout: float) -> dict[str, Any]:
        raise RemediatorError(f"{action}: this replica runs with --role intake; "
                              "executions run on `all` or `worker` replicas")


def build_service(config: RemediatorConfig, *, db_path: str | Path, playbooks_dir: str | Path,
                  token: str | None, runtime: Runtime | None = None, dry_run: bool = False,
                  registry: CollectorRegistry | None = None,
                  policy: EscalationPolicy | None = None, clock: Clock = utc_now,
                  notify_env: Mapping[str, str] | None = None, role: str = "all",
                  replica_id: str | None = None) -> Service:
    """Wire a Service; `runtime=None` means the real adapters (Docker, HTTP).

    `policy=None` reads config.escalation_path; `clock` and `notify_env` (default
    os.environ) let tests drive escalation timing and channels. `role`: all, intake or
    worker (module doc); `replica_id` names this replica in the store's leases (default:
    leases.default_replica_id).
    """
    policy = policy or load_service_policy(config)
    store = open_store(db_path)
    playbooks = load_playbooks(Path(playbooks_dir), config.targets)
    metrics = ServiceMetrics(registry or CollectorRegistry())
    docker_ping: Callable[[], bool] | None = None
    docker_error: Callable[[], str | None] | None = None
    engine_states: Callable[[], dict[str, dict[str, Any]]] | None = None
    leases = Leases(store, replica_id or default_replica_id(), candidate=role != "intake")
    metrics.replica.labels(replica_id=leases.replica_id, role=role).set(1)
    if role == "intake":
        runtime = _NoRuntime()
    elif runtime is None:
        from remediator.adapters.runtime import build_runtime

        real = build_runtime(config, store.last_known_good)
        runtime, docker_ping = real, real.docker.ping
        docker_error = lambda: real.docker.ping_error  # noqa: E731
        engine_states = real.engines.states if real.engines else None
    worker = Worker(store, config, playbooks, runtime, metrics, dry_run=dry_run,
                    leases=leases)
    writer = GroupCommitWriter(store, metrics=metrics)
    reconciler = Reconciler(store, config.alertmanager_url, writer.submit, worker.wake,
                            client=monitoring_client(config), metrics=metrics,
                            is_leader=lambda: leases.is_leader)
    escalation = EscalationService(store, policy, metrics, clock=clock, env=notify_env,
                                   replica_id=leases.replica_id,
                                   is_leader=lambda: leases.is_leader)
    worker.on_finished = escalation.execution_finished
    return Service(config, store, playbooks, worker, metrics, token, writer, reconciler,
                   docker_ping, escalation, docker_error, engine_states, role)
