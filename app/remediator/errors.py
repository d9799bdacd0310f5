"""Every error Remediator raises on purpose, in one tree.

    RemediatorError
    ├── ConfigError               a config file is missing or invalid (names file and key)
    ├── PayloadError              an Alertmanager webhook body is not a valid v4 payload
    ├── PlaybookError             a playbook cannot be loaded or run as written
    │   ├── PlaybookSchemaError   the YAML breaks the schema (names file, line, field)
    │   └── TemplateError         a template fails to parse or render (strict, sandboxed)
    ├── RuntimeError_             an action against the outside world failed
    │   ├── TargetNotFound        no declared target / no such container
    │   ├── ActionTimeout         an action ran past its timeout and was cut off
    │   ├── ActionFailed          an action ran and reported failure
    │   └── Unreachable           an HTTP endpoint gave no usable answer
    ├── StoreError                the store (SQLite or PostgreSQL) could not read or write
    └── NotifyError               a notification could not be delivered
        ├── NotifyRetryable       worth retrying (429, 5xx, network)
        └── NotifyPermanent       not worth retrying (other 4xx, bad config)

Third-party errors (docker, requests, yaml, sqlite3, psycopg) are translated at the boundary into
the most specific of these, so callers catch domain errors only.
"""

from __future__ import annotations

__all__ = [
    "ActionFailed",
    "ActionTimeout",
    "ConfigError",
    "NotifyError",
    "NotifyPermanent",
    "NotifyRetryable",
    "PayloadError",
    "PlaybookError",
    "PlaybookSchemaError",
    "RemediatorError",
    "RuntimeError_",
    "StoreError",
    "TargetNotFound",
    "TemplateError",
    "Unreachable",
]


class RemediatorError(Exception):
    """Base of every error Remediator raises on purpose."""


class ConfigError(RemediatorError):
    """A config file is missing or invalid; the message names the file and the key."""


class PayloadError(RemediatorError):
    """A webhook body is not a valid Alertmanager v4 payload; the message names the field."""


class PlaybookError(RemediatorError):
    """A playbook cannot be loaded or run as written."""


class PlaybookSchemaError(PlaybookError):
    """A playbook breaks the schema; the message names the file, line and field."""


class TemplateError(PlaybookError):
    """A template fails to parse or render."""


class RuntimeError_(RemediatorError):
    """An action against the outside world failed."""


class TargetNotFound(RuntimeError_):
    """No declared target matches, or its container does not exist."""


class ActionTimeout(RuntimeError_):
    """An action ran past its timeout and was cut off."""


class ActionFailed(RuntimeError_):
    """An action ran and reported failure."""


class Unreachable(RuntimeError_):
    """An HTTP endpoint gave no usable answer: network error, timeout, bad URL, an error
    status where one was not expected, or a body that is not JSON where JSON was asked."""


class StoreError(RemediatorError):
    """The store could not read or write (SQLite, or PostgreSQL gone or refusing)."""


class NotifyError(RemediatorError):
    """A notification could not be delivered."""


class NotifyRetryable(NotifyError):
    """Delivery failed in a way worth retrying (429, 5xx, network error)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class NotifyPermanent(NotifyError):
    """Delivery failed in a way not worth retrying (another 4xx, bad configuration)."""
