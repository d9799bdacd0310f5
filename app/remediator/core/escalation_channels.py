"""Who can be reached, and how: notification levels, severities, channel types and their
settings, and teams with the channels that reach them, as configured (secrets unresolved).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal

__all__ = [
    "CHANNEL_SCHEMAS",
    "DEFAULT_PAGERDUTY_EVENTS_URL",
    "DEFAULT_SEVERITY",
    "LEVELS",
    "SEVERITIES",
    "ChannelSpec",
    "FieldSpec",
    "Level",
    "TeamConfig",
    "ValueRef",
]

Level = Literal["page", "notify"]
LEVELS: Final = ("page", "notify")
"""``page`` wakes someone up (PagerDuty); ``notify`` is a message people read in hours."""

SEVERITIES: Final = ("critical", "error", "warning", "info")
"""PagerDuty Events v2 severities; every channel shows the same word."""

DEFAULT_SEVERITY: Final[Mapping[str, str]] = {"page": "critical", "notify": "warning"}
"""The severity of a rule or request that names none, by level."""

DEFAULT_PAGERDUTY_EVENTS_URL: Final = "https://events.pagerduty.com/v2/enqueue"
"""Where PagerDuty Events API v2 events go unless ``events_url`` says otherwise."""


@dataclass(frozen=True)
class ValueRef:
    """Where a channel setting comes from: an environment variable, a file, or the YAML."""

    env: str | None = None
    file: str | None = None
    literal: str | None = None
    default: str | None = None

    def describe(self, secret: bool) -> str:
        """How the API shows the setting without resolving it."""
        if self.env:
            return f"env:{self.env}"
        if self.file:
            return f"file:{self.file}"
        return "***" if secret else str(self.literal)


@dataclass(frozen=True)
class FieldSpec:
    """A setting a channel type understands."""

    required: bool = False
    secret: bool = False
    default: str | None = None


CHANNEL_SCHEMAS: Final[Mapping[str, Mapping[str, FieldSpec]]] = {
    "slack": {"webhook_url": FieldSpec(required=True, secret=True)},
    "pagerduty": {
        "routing_key": FieldSpec(required=True, secret=True),
        "events_url": FieldSpec(default=DEFAULT_PAGERDUTY_EVENTS_URL),
    },
    "teams": {"webhook_url": FieldSpec(required=True, secret=True)},
    "webhook": {"url": FieldSpec(required=True, secret=True)},
    "email": {
        "host": FieldSpec(required=True),
        "port": FieldSpec(),  # default depends on tls: 465 for ssl, 25 otherwise
        "username": FieldSpec(),
        "password": FieldSpec(secret=True),
        "sender": FieldSpec(required=True),
        "recipients": FieldSpec(required=True),  # comma-separated
        "tls": FieldSpec(default="auto"),  # auto | starttls | ssl | none
        "timeout": FieldSpec(default="10"),
        "ca_file": FieldSpec(),  # CA bundle for a server certificate from a private CA
    },
}
"""Channel types and their settings; anything else in a channel is a config error."""


@dataclass(frozen=True)
class ChannelSpec:
    """A channel as configured (settings unresolved: secrets are read when sending)."""

    name: str
    type: str
    settings: Mapping[str, ValueRef]
    levels: frozenset[str] = frozenset(LEVELS)

    def describe(self) -> dict[str, object]:
        schema = CHANNEL_SCHEMAS[self.type]
        return {
            "name": self.name,
            "type": self.type,
            "levels": sorted(self.levels),
            "settings": {k: v.describe(schema[k].secret) for k, v in self.settings.items()},
        }


@dataclass(frozen=True)
class TeamConfig:
    """A team and the channels that reach it, in the order they are tried."""

    name: str
    description: str
    channels: tuple[ChannelSpec, ...]
