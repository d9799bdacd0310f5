"""The Runtime the playbook runner calls: docker.* → Docker, http.check/prometheus.query → HTTP."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from remediator.adapters.docker_runtime import DockerActions
from remediator.adapters.engines import Engines
from remediator.adapters.http import HttpActions
from remediator.adapters.monitoring_auth import monitoring_client
from remediator.core.config import RemediatorConfig
from remediator.core.targets import Target
from remediator.errors import ActionFailed

__all__ = ["AdapterRuntime", "build_runtime"]


class AdapterRuntime:
    """`docker` is the default engine's actions; `engines` routes each target to its own."""

    def __init__(self, docker: DockerActions, http: HttpActions,
                 engines: Engines | None = None) -> None:
        self.docker = docker
        self.http = http
        self.engines = engines

    def call(self, action: str, args: dict[str, Any], target: Target,
             timeout: float) -> dict[str, Any]:
        if action.startswith("docker."):
            if self.engines is not None:
                return self.engines.call(action, args, target, timeout)
            return self.docker.call(action, args, target, timeout)
        if action in ("http.check", "prometheus.query"):
            return self.http.call(action, args, target, timeout)
        raise ActionFailed(f"no adapter implements action {action!r}")


def build_runtime(config: RemediatorConfig,
                  lkg_provider: Callable[[str], dict[str, Any] | None] | None = None
                  ) -> AdapterRuntime:
    """The real adapters; `lkg_provider(target)` answers docker.recreate's last_known_good."""
    engines = Engines(config.targets, lkg_provider)
    return AdapterRuntime(engines.default.docker,
                          HttpActions(config.prometheus_url,
                                      prometheus_client=monitoring_client(config)),
                          engines)
