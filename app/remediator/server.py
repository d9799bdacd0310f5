"""`remediator serve` under gunicorn: one process (the worker thread lives beside the app)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from remediator.core.config import RemediatorConfig

__all__ = ["run_server"]


def run_server(config: RemediatorConfig, *, host: str, port: int, db_path: Path,
               playbooks_dir: Path, token: str | None, dry_run: bool, threads: int) -> None:
    from gunicorn.app.base import BaseApplication

    from remediator.service import build_service
    from remediator.web import create_app

    class Server(BaseApplication):
        def load_config(self) -> None:
            settings: dict[str, Any] = {
                "bind": f"{host}:{port}", "workers": 1, "threads": threads,
                "worker_class": "gthread", "timeout": 120, "graceful_timeout": 10,
                "accesslog": None, "loglevel": "warning", "backlog": 2048,
                "worker_exit": lambda _server, _worker: service_ref and service_ref[0].close(),
            }
            for key, value in settings.items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            service = build_service(config, db_path=db_path, playbooks_dir=playbooks_dir,
                                    token=token, dry_run=dry_run)
            service.worker.start()
            service_ref.append(service)
            return create_app(service)

    service_ref: list[Any] = []
    Server().run()
