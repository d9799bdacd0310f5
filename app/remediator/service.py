"""A running Remediator: config, store, playbooks, runtime, worker and metrics, wired once."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from remediator.adapters.ingest import GroupCommitWriter
from remediator.adapters.store import Store
from remediator.core.config import RemediatorConfig
from remediator.core.playbook import Playbook, load_playbooks
from remediator.core.runner import Runtime
from remediator.metrics import ServiceMetrics
from remediator.reconcile import Reconciler
from remediator.worker import Worker

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

    def start(self) -> None:
        """Start the background parts: the worker, then reconciliation with Alertmanager."""
        self.worker.start()
        self.reconciler.start()

    def set_paused(self, paused: bool) -> None:
        self.store.set_setting("paused", "1" if paused else "0")
        self.metrics.paused.set(1 if paused else 0)

    def refresh_gauges(self) -> None:
        self.metrics.inbox_depth.set(self.store.inbox_depth())
        self.metrics.paused.set(1 if self.worker.paused else 0)

    def readiness(self) -> dict[str, Any]:
        docker_ok = bool(self.docker_ping()) if self.docker_ping else True
        return {"store": self.store.ping(), "docker": docker_ok, "paused": self.worker.paused}

    def close(self) -> None:
        self.reconciler.stop()
        self.worker.stop()
        self.writer.close()
        self.store.close()


def build_service(config: RemediatorConfig, *, db_path: str | Path, playbooks_dir: str | Path,
                  token: str | None, runtime: Runtime | None = None, dry_run: bool = False,
                  registry: CollectorRegistry | None = None) -> Service:
    """Wire a Service; `runtime=None` means the real adapters (Docker, HTTP)."""
    store = Store(db_path)
    playbooks = load_playbooks(Path(playbooks_dir), config.targets)
    metrics = ServiceMetrics(registry or CollectorRegistry())
    docker_ping = None
    if runtime is None:
        from remediator.adapters.runtime import build_runtime

        real = build_runtime(config)
        runtime, docker_ping = real, real.docker.ping
    worker = Worker(store, config, playbooks, runtime, metrics, dry_run=dry_run)
    writer = GroupCommitWriter(store)
    reconciler = Reconciler(store, config.alertmanager_url, writer.submit, worker.wake)
    return Service(config, store, playbooks, worker, metrics, token, writer, reconciler,
                   docker_ping)
