"""The Alertmanager webhook payload (version 4) and incident identity.

Strict where it matters (version, types of labels, timestamps) and lenient where
Alertmanager versions differ: `truncatedAlerts` may be missing (before 0.21),
`notification_reason` (0.32+), `routeLabels` and any other unknown field are ignored.
Whatever the input, `parse_webhook` returns a payload or raises PayloadError naming the
JSON path; it never lets another exception escape.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from enum import StrEnum
from typing import Any

from remediator.core.clock import iso
from remediator.errors import PayloadError

__all__ = [
    "ALERT_CONTEXT_KEYS",
    "Alert",
    "AlertStatus",
    "WebhookPayload",
    "alert_context",
    "label_fingerprint",
    "parse_alert",
    "parse_webhook",
]

_TIMESTAMP = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})"
)
# FNV-1a 64, as Prometheus' model.LabelSet.Fingerprint computes it.
_FNV_OFFSET = 14695981039346656037
_FNV_PRIME = 1099511628211
_SEPARATOR = 0xFF


class AlertStatus(StrEnum):
    """Status of an alert or of a whole notification."""

    FIRING = "firing"
    RESOLVED = "resolved"


@dataclass(frozen=True)
class Alert:
    """One alert from a webhook. `ends_at` is None while firing (Alertmanager's year 1)."""

    status: AlertStatus
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: datetime
    ends_at: datetime | None
    generator_url: str
    fingerprint: str

    @property
    def incident_key(self) -> str:
        """Identity of the incident: one firing episode of one alert (fingerprint + start).

        The start is taken to the millisecond: Alertmanager's v2 API (which reconciliation
        reads) truncates startsAt to milliseconds while webhooks carry nanoseconds, and both
        must name the same incident.
        """
        start = self.starts_at.astimezone(UTC)
        return f"{self.fingerprint}@{start.strftime('%Y-%m-%dT%H:%M:%S')}." \
               f"{start.microsecond // 1000:03d}Z"

    def to_dict(self) -> dict[str, Any]:
        """The alert in Alertmanager's own JSON shape (camelCase), for storage and replay."""
        return {
            "status": self.status.value,
            "labels": dict(self.labels),
            "annotations": dict(self.annotations),
            "startsAt": iso(self.starts_at),
            "endsAt": iso(self.ends_at) if self.ends_at else "0001-01-01T00:00:00Z",
            "generatorURL": self.generator_url,
            "fingerprint": self.fingerprint,
        }


@dataclass(frozen=True)
class WebhookPayload:
    """A whole Alertmanager webhook notification (a group of alerts)."""

    receiver: str
    status: AlertStatus
    alerts: list[Alert]
    # camelCase: Alertmanager's own field names, so they grep the same in both code bases.
    groupLabels: dict[str, str]
    commonLabels: dict[str, str]
    commonAnnotations: dict[str, str]
    externalURL: str
    version: str
    groupKey: str
    truncated_alerts: int = 0
    extra_fields: list[str] = field(default_factory=list)


def parse_webhook(body: bytes | str | dict[str, Any]) -> WebhookPayload:
    """Parse and validate a webhook body; PayloadError names the offending JSON path."""
    data = _decode(body)
    _require_version(data)
    alerts = _list(data, "alerts", "alerts")
    return WebhookPayload(
        receiver=_opt_str(data, "receiver", "receiver"),
        status=_status(data, "status", "status"),
        alerts=[parse_alert(item, f"alerts[{i}]") for i, item in enumerate(alerts)],
        groupLabels=_str_map(data.get("groupLabels", {}), "groupLabels"),
        commonLabels=_str_map(data.get("commonLabels", {}), "commonLabels"),
        commonAnnotations=_str_map(data.get("commonAnnotations", {}), "commonAnnotations"),
        externalURL=_opt_str(data, "externalURL", "externalURL"),
        version="4",
        groupKey=_opt_str(data, "groupKey", "groupKey"),
        truncated_alerts=_truncated(data),
        extra_fields=sorted(str(key) for key in data if key not in _KNOWN_FIELDS),
    )


def parse_alert(item: object, path: str = "alert") -> Alert:
    """Validate one alert object (as found in `alerts[]`)."""
    if not isinstance(item, dict):
        raise PayloadError(f"{path}: expected an object")
    labels = _str_map(_required(item, "labels", path), f"{path}.labels")
    fingerprint = item.get("fingerprint") or ""
    if not isinstance(fingerprint, str):
        raise PayloadError(f"{path}.fingerprint: expected string")
    _text(fingerprint, f"{path}.fingerprint")
    return Alert(
        status=_status(item, "status", f"{path}.status"),
        labels=labels,
        annotations=_str_map(item.get("annotations", {}), f"{path}.annotations"),
        starts_at=_required_time(item, "startsAt", path),
        ends_at=_optional_time(item.get("endsAt"), f"{path}.endsAt"),
        generator_url=_opt_str(item, "generatorURL", f"{path}.generatorURL"),
        fingerprint=fingerprint or label_fingerprint(labels),
    )


def label_fingerprint(labels: dict[str, str]) -> str:
    """Alertmanager's fingerprint of a label set (FNV-1a 64 of sorted name/value pairs)."""
    digest = _FNV_OFFSET
    for name in sorted(labels):
        for part in (name, labels[name]):
            for byte in [*part.encode("utf-8"), _SEPARATOR]:
                digest = ((digest ^ byte) * _FNV_PRIME) & 0xFFFFFFFFFFFFFFFF
    return f"{digest:016x}"


ALERT_CONTEXT_KEYS = frozenset(
    {"status", "labels", "annotations", "startsAt", "endsAt", "generatorURL", "fingerprint",
     "incident_key"}
)
"""Fields a template may read from `alert` (checked by `remediator validate`)."""


def alert_context(alert: Alert) -> dict[str, Any]:
    """The `alert` variable templates see: plain values, never template source."""
    return {**alert.to_dict(), "incident_key": alert.incident_key}


_KNOWN_FIELDS = frozenset(
    {"receiver", "status", "alerts", "groupLabels", "commonLabels", "commonAnnotations",
     "externalURL", "version", "groupKey", "truncatedAlerts"}
)


def _decode(body: bytes | str | dict[str, Any]) -> dict[str, Any]:
    if isinstance(body, bytes | bytearray):
        try:
            body = bytes(body).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise PayloadError(f"body is not UTF-8 (byte {exc.start})") from None
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except json.JSONDecodeError as exc:
            raise PayloadError(f"body is not JSON: {exc.msg} at line {exc.lineno}") from None
        except ValueError as exc:  # e.g. an integer longer than Python's digit limit
            raise PayloadError(f"body is not JSON: {exc}"[:200]) from None
        except RecursionError:
            raise PayloadError("body is not JSON: nested too deeply") from None
    if not isinstance(body, dict):
        raise PayloadError("(root): expected a JSON object")
    return body


def _require_version(data: dict[str, Any]) -> None:
    version = _required(data, "version", "")
    if version != "4":
        raise PayloadError(f"version: expected \"4\" (Alertmanager webhook v4), got {version!r}")


def _required(data: dict[str, Any], key: str, path: str) -> Any:
    if key not in data:
        raise PayloadError(f"{_join(path, key)}: required field is missing")
    return data[key]


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _list(data: dict[str, Any], key: str, path: str) -> list[Any]:
    value = _required(data, key, "")
    if not isinstance(value, list):
        raise PayloadError(f"{path}: expected a list")
    return value


def _status(data: dict[str, Any], key: str, path: str) -> AlertStatus:
    value = data.get(key)
    if value not in ("firing", "resolved"):
        raise PayloadError(f"{path}: expected \"firing\" or \"resolved\", got {value!r}")
    return AlertStatus(value)


def _opt_str(data: dict[str, Any], key: str, path: str) -> str:
    value = data.get(key, "")
    if not isinstance(value, str):
        raise PayloadError(f"{path}: expected string")
    return _text(value, path)


def _str_map(value: object, path: str) -> dict[str, str]:
    if not isinstance(value, dict):
        raise PayloadError(f"{path}: expected an object of strings")
    for key, item in value.items():
        where = f"{path}.{_printable(str(key))}"
        _text(str(key), where, "the name")
        if not isinstance(item, str):
            raise PayloadError(f"{where}: expected string")
        _text(item, where)
    return dict(value)


def _text(value: str, path: str, what: str = "the value") -> str:
    """`value`, if it is Unicode text that can be stored and sent on as UTF-8. JSON's
    escapes allow a lone surrogate (\\ud800), which no UTF-8 encoder accepts."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise PayloadError(f"{path}: {what} is not valid Unicode text (lone surrogate "
                           f"{value[exc.start]!r} at character {exc.start})") from None
    return value


def _printable(text: str, limit: int = 100) -> str:
    """`text` fit for an error message: lone surrogates escaped, cut to `limit`."""
    shown = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."


def _truncated(data: dict[str, Any]) -> int:
    value = data.get("truncatedAlerts", 0)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise PayloadError("truncatedAlerts: expected a non-negative integer")
    return value


def _required_time(item: dict[str, Any], key: str, path: str) -> datetime:
    parsed = _optional_time(_required(item, key, path), f"{path}.{key}")
    if parsed is None:
        raise PayloadError(f"{path}.{key}: expected a real timestamp, not year 1")
    return parsed


def _optional_time(value: object, path: str) -> datetime | None:
    """RFC 3339 with nanoseconds (cut to microseconds); year 1 means "not set"."""
    if value is None:
        return None
    match = _TIMESTAMP.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise PayloadError(f"{path}: expected an RFC 3339 timestamp, got {value!r}"[:200])
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    if year == "0001":
        return None
    try:
        return datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second),
            int((fraction or "0")[:6].ljust(6, "0")), tzinfo=_zone(zone),
        ).astimezone(UTC)
    except (ValueError, OverflowError):
        raise PayloadError(f"{path}: not a valid date/time: {value!r}") from None


def _zone(text: str) -> timezone:
    if text in ("Z", "z"):
        return UTC
    sign = -1 if text[0] == "-" else 1
    return timezone(sign * timedelta(hours=int(text[1:3]), minutes=int(text[4:6])))
