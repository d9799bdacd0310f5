"""The stack on one machine (README.md, `make up`), for `make up` and the end-to-end tests.

app-prod runs in Docker; Prometheus, Alertmanager and Remediator run as host processes from
the shipped configs in monitoring/ with only addresses, ports and (for tests) intervals
changed. Nothing here is needed by `remediator serve` itself.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from remediator.adapters.private_files import write_private
from remediator.core.defaults import DEFAULT_MONITORING_USERNAME

__all__ = [
    "APP_HEALTHCHECK",
    "AppSpec",
    "MonitoringAuth",
    "Timings",
    "app_container_kwargs",
    "bcrypt_hash",
    "monitoring_auth",
    "record_known_good",
    "render_alertmanager_config",
    "render_alerts",
    "render_prometheus_config",
]

APP_HEALTHCHECK = {
    # The runbook's "Automated Recovery" healthcheck (interval 60s, timeout 30s, retries 3,
    # start period 120s), in nanoseconds as the Engine API wants them.
    "test": ["CMD", "python", "-c",
             "from mobile_multimodal import MobileMultiModalLLM; "
             "MobileMultiModalLLM.health_check()"],
    "interval": 60 * 10**9, "timeout": 30 * 10**9, "retries": 3, "start_period": 120 * 10**9,
}
"""Same as docker-compose.yml's app-prod healthcheck."""


@dataclass(frozen=True)
class Timings:
    """Intervals a test may shorten; the shipped values are the defaults."""

    scrape_interval: str | None = None
    evaluation_interval: str | None = None
    alert_for: str | None = None
    group_wait: str | None = None
    group_interval: str | None = None
    repeat_interval: str | None = None


@dataclass(frozen=True)
class AppSpec:
    """How app-prod runs: same restart policy, healthcheck and memory limit as compose."""

    name: str = "app-prod"
    image: str = "mobile-multimodal:latest"
    port: int = 8080
    memory: str = "3g"
    models_volume: str = "app-prod-models"
    backup_volume: str = "app-prod-backup"


def app_container_kwargs(spec: AppSpec, labels: Mapping[str, str] | None = None) -> dict[str, Any]:
    """docker SDK `containers.run` arguments for app-prod (ports on 127.0.0.1 only)."""
    return {
        "image": spec.image, "name": spec.name, "detach": True,
        "ports": {"8080/tcp": ("127.0.0.1", spec.port)},
        "restart_policy": {"Name": "unless-stopped"},
        "mem_limit": spec.memory, "memswap_limit": spec.memory,
        "healthcheck": APP_HEALTHCHECK,
        "volumes": {spec.models_volume: {"bind": "/app/models", "mode": "rw"},
                    spec.backup_volume: {"bind": "/backup/models", "mode": "rw"}},
        "labels": dict(labels or {}),
    }


# -- basic auth for Prometheus and Alertmanager (their --web.config.file) -------------------
def bcrypt_hash(password: str) -> str:
    """A bcrypt hash of ``password``, as a web config's basic_auth_users wants it: the
    ``bcrypt`` package if installed, else the C library's crypt() (libxcrypt knows $2b$)."""
    try:
        import bcrypt  # type: ignore[import-not-found]

        return str(bcrypt.hashpw(password.encode(), bcrypt.gensalt(10)).decode())
    except ImportError:
        pass
    name = ctypes.util.find_library("crypt") or "libcrypt.so.1"
    try:
        lib = ctypes.CDLL(name)
    except OSError as exc:
        raise RuntimeError(f"no bcrypt to hash the monitoring password: `pip install bcrypt` "
                           f"or install libcrypt1 ({exc})") from None
    lib.crypt.restype = ctypes.c_char_p
    lib.crypt_gensalt.restype = ctypes.c_char_p
    salt = lib.crypt_gensalt(b"$2b$", 10, None, 0)
    hashed = lib.crypt(password.encode(), salt) if salt else None
    if not hashed or not hashed.startswith(b"$2"):
        raise RuntimeError("the C library's crypt() cannot make bcrypt hashes here: "
                           "`pip install bcrypt`")
    return str(hashed.decode())


@dataclass(frozen=True)
class MonitoringAuth:
    """The credentials Prometheus and Alertmanager accept, and where they are written."""

    username: str
    password: str
    password_file: Path
    web_config: Path

    @property
    def pair(self) -> tuple[str, str]:
        return self.username, self.password


def monitoring_auth(folder: Path, username: str = DEFAULT_MONITORING_USERNAME) -> MonitoringAuth:
    """The monitoring password in ``folder`` (made, random, on first use) and a web config
    for Prometheus and Alertmanager with its bcrypt hash; both files 0600."""
    password_file = folder / "monitoring-password"
    made = not password_file.exists()
    if made:
        write_private(password_file, secrets.token_urlsafe(24) + "\n")
    password = password_file.read_text().strip()
    web_config = folder / "web-config.yml"
    # Kept as it is once written: Prometheus and Alertmanager re-read it on every request.
    if made or not web_config.exists():
        write_private(web_config, yaml.safe_dump(
            {"basic_auth_users": {username: bcrypt_hash(password)}}))
    return MonitoringAuth(username, password, password_file, web_config)


def _replace_targets(targets: list[str], addresses: Mapping[str, str]) -> list[str]:
    return [addresses.get(target, target) for target in targets]


def render_prometheus_config(text: str, addresses: Mapping[str, str],
                             timings: Timings = Timings(),
                             auth: MonitoringAuth | None = None) -> str:
    """The shipped prometheus.yml with `host:port` targets replaced (labels kept); with
    ``auth``, the credentials it sends to Alertmanager (its password file), for alerts and
    for every scrape job that carries basic_auth (Alertmanager's own metrics)."""
    config = yaml.safe_load(text)
    if auth is not None:
        credentials = {"username": auth.username, "password_file": str(auth.password_file)}
        for manager in config.get("alerting", {}).get("alertmanagers", []):
            manager["basic_auth"] = dict(credentials)
        for scrape in config.get("scrape_configs", []):
            if "basic_auth" in scrape:
                scrape["basic_auth"] = dict(credentials)
    for scrape in config.get("scrape_configs", []):
        for static in scrape.get("static_configs", []):
            static["targets"] = _replace_targets(static["targets"], addresses)
    for manager in config.get("alerting", {}).get("alertmanagers", []):
        # A DNS name for every Alertmanager (compose) becomes its `host:port` target here.
        named = [f"{name}:{sd['port']}" for sd in manager.pop("dns_sd_configs", [])
                 for name in sd["names"]]
        if named:
            manager.setdefault("static_configs", []).append({"targets": named})
        for static in manager.get("static_configs", []):
            static["targets"] = _replace_targets(static["targets"], addresses)
    glob = config.setdefault("global", {})
    if timings.scrape_interval:
        glob["scrape_interval"] = timings.scrape_interval
        for scrape in config.get("scrape_configs", []):  # a job's own interval too
            scrape.pop("scrape_interval", None)
            scrape.pop("scrape_timeout", None)
    if timings.evaluation_interval:
        glob["evaluation_interval"] = timings.evaluation_interval
    return str(yaml.safe_dump(config, sort_keys=False))


def render_alerts(text: str, timings: Timings = Timings()) -> str:
    """The shipped alerts.yml, with every rule's `for:` and every group's own evaluation
    `interval:` shortened when a test asks."""
    if timings.alert_for:
        text = re.sub(r"(?m)^(\s+for:\s*)\S+", rf"\g<1>{timings.alert_for}", text)
    if timings.evaluation_interval:
        text = re.sub(r"(?m)^(\s+interval:\s*)\S+", rf"\g<1>{timings.evaluation_interval}",
                      text)
    return text


def render_alertmanager_config(text: str, webhook_url: str, token_file: str,
                               timings: Timings = Timings(),
                               oncall: Mapping[str, str] | None = None) -> str:
    """The shipped alertmanager.yml pointed at this Remediator, with its token file; the
    human route's e-mail filled from ``oncall`` (ONCALL_EMAIL, ONCALL_SMARTHOST, ONCALL_FROM:
    `make up` passes its environment), the shipped placeholders kept for any not set."""
    config = yaml.safe_load(text)
    fill = {"to": "ONCALL_EMAIL", "smarthost": "ONCALL_SMARTHOST", "from": "ONCALL_FROM"}
    for receiver in config.get("receivers", []):
        for mail in receiver.get("email_configs", []):
            for key, variable in fill.items():
                if (oncall or {}).get(variable):
                    mail[key] = (oncall or {})[variable]
    for receiver in config.get("receivers", []):
        for hook in receiver.get("webhook_configs", []):
            hook["url"] = webhook_url
            auth = hook.setdefault("http_config", {}).setdefault("authorization", {})
            auth["credentials_file"] = token_file
    route = config["route"]
    for key in ("group_wait", "group_interval", "repeat_interval"):
        value = getattr(timings, key)
        if value:
            route[key] = value
    return str(yaml.safe_dump(config, sort_keys=False))


def record_known_good(client: Any, config_path: Path, db_path: Path, target_name: str) -> str:
    """Record `target_name`, just started and verified healthy, as its last-known-good in
    the store at `db_path`, as a validated fix would; returns the recorded image id.

    `make up` and `make demo` call this after they (re)create app-prod, and on fresh
    volumes: a record taken on the old volumes is of another incarnation, which a rollback
    no longer uses (docker_runtime.storage_identity), so without this one a bad deploy right
    after would have nothing to roll back to.
    """
    from remediator.adapters.docker_runtime import DockerActions, last_known_good_snapshot
    from remediator.core.config import load_config
    from remediator.errors import RemediatorError
    from remediator.store import open_store

    target = load_config(config_path, env={}).target(target_name)
    if target is None:
        raise RemediatorError(f"{config_path} declares no target {target_name!r}")
    snapshot = last_known_good_snapshot(DockerActions(lambda: client).call, target)
    if snapshot is None:
        raise RemediatorError(f"{target.container} is not running: no last-known-good to record")
    store = open_store(db_path)
    try:
        store.record_last_known_good(target.name, *snapshot)
    finally:
        store.close()
    return snapshot[0]
