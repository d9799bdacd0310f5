"""`remediator serve` under gunicorn: one process (the worker thread lives beside the app)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from remediator.core import defaults
from remediator.core.config import RemediatorConfig

__all__ = ["check_setup", "gunicorn_settings", "run_gunicorn",
           "run_server"]


def gunicorn_settings(host: str, port: int, threads: int) -> dict[str, Any]:
    """One worker process with threads: the store, worker and metrics live in one process."""
    return {"bind": f"{host}:{port}", "workers": 1, "threads": threads,
            "worker_class": "gthread", "timeout": 120, "graceful_timeout": 10,
            "keepalive": 5, "accesslog": None, "loglevel": "warning", "backlog": 2048}


def run_gunicorn(load: Callable[[], Any], settings: dict[str, Any],
                 on_exit: Callable[[], None] | None = None) -> None:
    """Serve the WSGI app that `load()` builds (called in the worker process)."""
    from gunicorn.app.base import BaseApplication

    class Server(BaseApplication):
        def load_config(self) -> None:
            for key, value in settings.items():
                self.cfg.set(key, value)
            if on_exit is not None:
                self.cfg.set("worker_exit", lambda _server, _worker: on_exit())

        def load(self) -> Any:
            return load()

    Server().run()


def check_setup(config: RemediatorConfig, *, db_path: str | Path, playbooks_dir: Path) -> None:
    """Load what the service will load (escalation policy, store, playbooks) before
    gunicorn starts: in its worker the same error is a traceback and "Worker failed to
    boot". Raises the RemediatorError that names what is wrong."""
    from remediator.core.playbook import load_playbooks
    from remediator.escalation import load_service_policy
    from remediator.store import open_store

    load_service_policy(config)
    load_playbooks(playbooks_dir, config.targets)
    open_store(db_path).close()  # last: it creates the file, which a wrong setup should not


def run_server(config: RemediatorConfig, *, host: str, port: int, db_path: str | Path,
               playbooks_dir: Path, token: str | None, dry_run: bool, threads: int,
               role: str = "all", replica_id: str | None = None) -> None:
    from remediator.service.build import Service, build_service
    from remediator.service.leases import default_replica_id
    from remediator.service.web import create_app

    replica_id = replica_id or default_replica_id(port)

    services: list[Service] = []

    def load() -> Any:
        # The webhook's threads share the GIL with intake and the escalation timer; a thread
        # waiting for it gets it within this interval instead of CPython's default 5 ms.
        sys.setswitchinterval(defaults.GIL_SWITCH_INTERVAL_S)
        service = build_service(config, db_path=db_path, playbooks_dir=playbooks_dir,
                                token=token, dry_run=dry_run, role=role,
                                replica_id=replica_id)
        service.start()
        services.append(service)
        return create_app(service)

    def close() -> None:
        for service in services:
            service.close()

    run_gunicorn(load, gunicorn_settings(host, port, threads), close)
