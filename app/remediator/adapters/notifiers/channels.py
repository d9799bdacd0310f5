"""Turn a team's configured channels into notifiers, reading secrets from env and files.

Secrets are read here, at send time, not when the policy is loaded: a rotated key in a
mounted file is picked up without a restart, and the policy object holds no secret.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Final, cast
from urllib.parse import urlsplit

from remediator.adapters.notifiers._transport import HttpTransport
from remediator.adapters.notifiers.base import Channel, DeliveryReport, Message, Notifier
from remediator.adapters.notifiers.email import TLS_MODES, EmailNotifier, SmtpSettings, TlsMode
from remediator.adapters.notifiers.json_webhook import JsonFormat, JsonWebhookNotifier
from remediator.adapters.notifiers.pagerduty import PagerDutyNotifier
from remediator.adapters.notifiers.slack import SLACK_FORMAT
from remediator.adapters.notifiers.teams import TEAMS_FORMAT
from remediator.adapters.notifiers.webhook import WEBHOOK_FORMAT
from remediator.core.escalation_channels import CHANNEL_SCHEMAS, ChannelSpec, TeamConfig, ValueRef
from remediator.errors import NotifyPermanent

__all__ = ["build_channel", "build_channels", "resolve_settings", "smtp_settings"]

_Factory = Callable[[str, Mapping[str, str], HttpTransport], Notifier]

_SSL_PORT: Final = 465
_PLAIN_PORT: Final = 25


class _Invalid(Exception):
    """A setting is present but unusable (e.g. SMTP_PORT=abc)."""


class _BrokenNotifier:
    """Stands in for a channel whose settings are set but wrong: every send fails, loudly.

    Unlike an unset variable (skipped), a wrong value is an operator mistake that must
    show up as a failed delivery with the reason, not be silently skipped.
    """

    def __init__(self, name: str, problem: str) -> None:
        self.name = name
        self._problem = problem

    def send(self, message: Message) -> DeliveryReport:
        raise NotifyPermanent(f"{self.name}: {self._problem}")


def build_channels(
    team_config: TeamConfig,
    env: Mapping[str, str],
    transport: HttpTransport | None = None,
) -> list[Channel]:
    """One Channel per configured channel of the team, in order; unset ones are skipped."""
    shared = transport or HttpTransport()
    return [build_channel(spec, env, shared) for spec in team_config.channels]


def build_channel(spec: ChannelSpec, env: Mapping[str, str], transport: HttpTransport
                  ) -> Channel:
    values, missing = resolve_settings(spec, env)
    if missing:
        return Channel(spec.name, spec.type, spec, None, _absence(missing))
    try:
        notifier = _FACTORIES[spec.type](spec.name, values, transport)
    except _Invalid as exc:
        notifier = _BrokenNotifier(spec.name, str(exc))
    return Channel(spec.name, spec.type, spec, notifier)


def _absence(missing: list[str]) -> str:
    # "SMTP_HOST, SMTP_FROM unset" reads better than one clause per variable.
    names = [m for m in missing if not m.startswith("file ")]
    files = [m for m in missing if m.startswith("file ")]
    return "; ".join(([f"{', '.join(names)} unset"] if names else []) + files)


def resolve_settings(spec: ChannelSpec, env: Mapping[str, str]
                     ) -> tuple[dict[str, str], list[str]]:
    """(values of the settings that are set, what is missing among the required ones)."""
    values: dict[str, str] = {}
    missing: list[str] = []
    for name, ref in spec.settings.items():
        value, unset = _resolve(ref, env)
        if value is not None:
            values[name] = value
        elif CHANNEL_SCHEMAS[spec.type][name].required:
            missing.append(unset)
    for name, field_spec in CHANNEL_SCHEMAS[spec.type].items():
        if field_spec.required and name not in spec.settings:
            missing.append(name)
    return values, missing


def _resolve(ref: ValueRef, env: Mapping[str, str]) -> tuple[str | None, str]:
    # Returns (value or None, how to describe its absence). Empty counts as unset: compose
    # files commonly pass `SLACK_WEBHOOK_URL=` through.
    if ref.env:
        value = env.get(ref.env, "").strip() or ref.default
        return value, ref.env
    if ref.file:
        try:
            value = Path(ref.file).read_text(encoding="utf-8").strip() or None
        except OSError:
            value = None
        return value or ref.default, f"file {ref.file} unreadable or empty"
    return ref.literal, "value"


# ------------------------------------------------------------------ factories


def _http_url(values: Mapping[str, str], key: str) -> str:
    url = values[key]
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _Invalid(f"{key} is not an http(s) URL")
    return url


def _json_webhook(fmt: JsonFormat, url_setting: str) -> _Factory:
    def build(name: str, values: Mapping[str, str], transport: HttpTransport) -> Notifier:
        return JsonWebhookNotifier(name, _http_url(values, url_setting), transport, fmt)
    return build


def _pagerduty(name: str, values: Mapping[str, str], transport: HttpTransport) -> Notifier:
    return PagerDutyNotifier(name, values["routing_key"], transport,
                             events_url=_http_url(values, "events_url"))


def _email(name: str, values: Mapping[str, str], transport: HttpTransport) -> Notifier:
    return EmailNotifier(name, smtp_settings(values))


def smtp_settings(values: Mapping[str, str]) -> SmtpSettings:
    """SmtpSettings from resolved values; raises _Invalid naming the bad setting."""
    tls = values.get("tls", "auto").lower()
    if tls not in TLS_MODES:
        raise _Invalid(f"tls must be one of {', '.join(TLS_MODES)}, got {tls!r}")
    recipients = tuple(r.strip() for r in values["recipients"].split(",") if r.strip())
    if not recipients:
        raise _Invalid("recipients is empty")
    return SmtpSettings(
        host=values["host"],
        port=_port(values, _SSL_PORT if tls == "ssl" else _PLAIN_PORT),
        sender=values["sender"],
        recipients=recipients,
        username=values.get("username") or None,
        password=values.get("password") or None,
        tls=cast(TlsMode, tls),
        timeout=_number(values, "timeout", 10.0),
        ca_file=values.get("ca_file") or None,
    )


def _number(values: Mapping[str, str], key: str, default: float) -> float:
    if key not in values:
        return default
    try:
        number = float(values[key])
    except ValueError:
        raise _Invalid(f"{key} must be a number, got {values[key]!r}") from None
    if number <= 0:
        raise _Invalid(f"{key} must be positive, got {values[key]!r}")
    return number


def _port(values: Mapping[str, str], default: int) -> int:
    port = _number(values, "port", default)
    if not port.is_integer() or port > 65535:
        raise _Invalid(f"port must be a whole number up to 65535, got {values['port']!r}")
    return int(port)


_FACTORIES: Final[Mapping[str, _Factory]] = {
    "slack": _json_webhook(SLACK_FORMAT, "webhook_url"),
    "teams": _json_webhook(TEAMS_FORMAT, "webhook_url"),
    "webhook": _json_webhook(WEBHOOK_FORMAT, "url"),
    "pagerduty": _pagerduty,
    "email": _email,
}
