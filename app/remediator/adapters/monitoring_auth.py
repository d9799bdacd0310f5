"""Basic auth for Prometheus and Alertmanager, which run with a web config (`make up`).

The password is read from a file (config `monitoring_password_file`, env
REMEDIATOR_MONITORING_PASSWORD_FILE), never from the config itself.
"""

from __future__ import annotations

from pathlib import Path

import requests

from remediator.adapters.http import HttpClient
from remediator.core.config import RemediatorConfig
from remediator.errors import ConfigError

__all__ = ["monitoring_auth", "monitoring_client"]


def monitoring_auth(config: RemediatorConfig) -> tuple[str, str] | None:
    """(user, password) for Prometheus and Alertmanager, or None when none is configured."""
    if not config.monitoring_password_file:
        return None
    path = Path(config.monitoring_password_file)
    try:
        password = path.read_text().strip()
    except OSError as exc:
        raise ConfigError(f"monitoring_password_file {path}: cannot read it ({exc.strerror}); "
                          "point it at the file `make up` wrote (the state folder's "
                          "monitoring-password) or unset it") from None
    if not password:
        raise ConfigError(f"monitoring_password_file {path} is empty; it must hold the "
                          "password Prometheus and Alertmanager accept")
    return config.monitoring_username, password


def monitoring_client(config: RemediatorConfig) -> HttpClient:
    """An HTTP client that sends the monitoring credentials (to Prometheus and
    Alertmanager only: never hand it to a check against an app)."""
    session = requests.Session()
    session.auth = monitoring_auth(config)
    return HttpClient(session)
