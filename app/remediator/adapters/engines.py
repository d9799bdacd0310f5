"""One Docker client per engine a target names, and each engine's state.

Targets without `docker_host` share the engine the environment names (DOCKER_HOST, else
the local socket): the behaviour before engines existed. Every other `docker_host` (with
its TLS files) gets its own client, made on first use. An engine that does not answer
fails the steps of its own targets only, with an error naming the target and the engine;
`states()` is what /readyz and /metrics show of each.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import docker
import docker.errors
import docker.tls
import requests

from remediator.adapters.docker_runtime import DockerActions, LkgProvider, engine_address
from remediator.adapters.swarm import SwarmActions
from remediator.core import defaults
from remediator.core.engines import TlsFiles
from remediator.core.targets import Target
from remediator.errors import RuntimeError_

__all__ = ["Engine", "Engines", "connect", "engine_problem"]

MIN_API_VERSION = "1.24"
"""Sent only until the engine says which version it speaks (the SDK then uses that)."""


def connect(address: str, tls: TlsFiles | None,
            timeout: float = defaults.ENGINE_ACTION_TIMEOUT_S) -> docker.DockerClient:
    """A client for the engine at `address` (unix:// or tcp:// with TLS), API version
    negotiated. The environment's CA bundle (REQUESTS_CA_BUNDLE) never replaces the
    engine's own CA: requests would otherwise let it override `verify` silently (so the
    environment's proxy variables are not used for engines either)."""
    config = None
    if tls is not None:
        config = docker.tls.TLSConfig(client_cert=(tls.cert, tls.key), ca_cert=tls.ca,
                                      verify=True)
    client = docker.DockerClient(base_url=address, tls=config, version=MIN_API_VERSION,
                                 timeout=int(defaults.ENGINE_PING_TIMEOUT_S))
    api = client.api
    api.trust_env = False
    api._version = api._retrieve_server_version()
    api.timeout = int(timeout)
    return client


def _tls_reason(exc: BaseException) -> str | None:
    """The TLS failure somewhere in `exc`'s chain (a refused or unverifiable certificate)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ssl.SSLError | requests.exceptions.SSLError):
            return str(current)
        if isinstance(current, docker.errors.TLSParameterError):
            return str(current)
        current = current.__cause__ or current.__context__
    text = str(exc)
    return text if "SSL" in text or "certificate" in text.lower() else None


def engine_problem(exc: BaseException, target_names: Iterable[str], address: str) -> str:
    """What went wrong reaching an engine, naming it and the targets that use it."""
    names = ", ".join(repr(name) for name in target_names) or "no target"
    tls = _tls_reason(exc)
    if tls is not None:
        if "CERTIFICATE_VERIFY_FAILED" in tls:
            fix = ("the engine's certificate is not signed by the target's tls.ca (or does "
                   "not name this address): give the CA that signed it")
        else:
            fix = ("the engine refused our certificate (tls.cert/tls.key): give a client "
                   "pair signed by the CA the engine trusts (its --tlscacert)")
        return (f"Docker engine {address} (target {names}) refused the TLS connection: "
                f"{fix}. ({tls})")
    return (f"Docker engine {address} (target {names}) did not answer: {exc}; is the "
            "engine up and reachable from here? Targets on other engines are not affected")


@dataclass
class Engine:
    """One engine: its address, its one client (shared by container and Swarm actions)."""

    address: str | None
    tls: TlsFiles | None
    docker: DockerActions
    swarm: SwarmActions
    targets: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def label(self) -> str:
        """The address as metrics and /readyz name it."""
        return self.address or engine_address()

    def ping(self) -> bool:
        """Whether the engine answers now; when it does not, `error` says why."""
        if self.address is None:  # the default engine: DockerActions' own ping and message
            ok = self.docker.ping()
            self.error = None if ok else self.docker.ping_error
            return ok
        try:
            api = self.docker.client.api
            api._raise_for_status(api._get(api._url("/_ping"),
                                           timeout=defaults.ENGINE_PING_TIMEOUT_S))
        except (docker.errors.DockerException, OSError) as exc:
            self.docker._client = None  # reconnect next time (new certificates, say)
            self.error = engine_problem(exc, self.targets, self.label)
            return False
        self.error = None
        return True


class Engines:
    """The engines of the declared targets, and which one each target is on."""

    def __init__(self, targets: Iterable[Target], lkg_provider: LkgProvider | None = None,
                 default: DockerActions | None = None) -> None:
        self.lkg_provider = lkg_provider
        default = default or DockerActions(lkg_provider=lkg_provider)
        self._engines: dict[tuple[str | None, TlsFiles | None], Engine] = {
            (None, None): Engine(None, None, default, SwarmActions(default))}
        for target in targets:
            self.engine(target).targets.append(target.name)

    @property
    def default(self) -> Engine:
        return self._engines[(None, None)]

    def engine(self, target: Target) -> Engine:
        key = (target.docker_host, target.tls if target.docker_host else None)
        if key not in self._engines:
            address, tls = key
            assert address is not None
            actions = DockerActions(client_factory=lambda: connect(address, tls),
                                    lkg_provider=self.lkg_provider, address=address)
            self._engines[key] = Engine(address, tls, actions, SwarmActions(actions))
        return self._engines[key]

    def call(self, action: str, args: dict[str, Any], target: Target,
             timeout: float) -> dict[str, Any]:
        """Run a docker.* action on the target's own engine (its container, or for a Swarm
        service the alerting replica's task); an engine error names target and engine."""
        engine = self.engine(target)
        actions = engine.swarm if target.swarm_service else engine.docker
        try:
            return actions.call(action, args, target, timeout)
        except RuntimeError_ as exc:
            if type(exc) is not RuntimeError_ or engine.address is None:
                raise  # the action's own failure, or the default engine (message as before)
            cause = exc.__context__ or exc  # the client's own error, not translated()'s
            raise RuntimeError_(f"{action}: " + engine_problem(
                cause, [target.name], engine.label)) from None

    def states(self) -> dict[str, dict[str, Any]]:
        """Each engine that has targets: {label: {up, error, targets, default}}, pinging
        each; `default` marks the engine DOCKER_HOST names (targets without docker_host)."""
        out: dict[str, dict[str, Any]] = {}
        for engine in self._engines.values():
            if not engine.targets:
                continue
            up = engine.ping()
            label = engine.label
            while label in out:  # the same address with other TLS files
                label += "'"
            out[label] = {"up": up, "error": engine.error, "targets": engine.targets,
                                 "default": engine.address is None}
        return out
