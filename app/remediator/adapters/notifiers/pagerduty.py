"""PagerDuty Events API v2: ``trigger`` per (incident, team, level), ``resolve`` with the
same ``dedup_key`` when the incident resolves.

PagerDuty answers 202 ``{"status": "success", "dedup_key": ...}``; 400 ``{"status":
"invalid event", "errors": [...]}`` for a malformed event (never retried); 429 when the
routing key is rate limited and 5xx when it is unwell (both retried).
"""

from __future__ import annotations

import json
from typing import Any, Final

from remediator.adapters.notifiers._transport import HttpTransport, check_status
from remediator.adapters.notifiers.base import DeliveryReport, Message
from remediator.core.escalation_channels import DEFAULT_PAGERDUTY_EVENTS_URL, SEVERITIES

__all__ = [
    "DEFAULT_PAGERDUTY_EVENTS_URL",
    "PagerDutyNotifier",
    "pagerduty_resolve",
    "pagerduty_trigger",
]

SUMMARY_MAX: Final = 1024
"""PagerDuty rejects a longer ``payload.summary``."""

_DETAILS_TEXT_MAX: Final = 64 * 1024  # keeps the event far below PagerDuty's 512 KB limit
_CLIENT: Final = "Remediator"


class PagerDutyNotifier:
    """Sends events for one routing key (the integration key of a PagerDuty service)."""

    def __init__(self, name: str, routing_key: str, transport: HttpTransport,
                 events_url: str = DEFAULT_PAGERDUTY_EVENTS_URL) -> None:
        self.name = name
        self._routing_key = routing_key
        self._events_url = events_url
        self._transport = transport

    def send(self, message: Message) -> DeliveryReport:
        if message.kind == "resolve":
            return self._post(pagerduty_resolve(self._routing_key, message.dedup_key))
        report = self._post(pagerduty_trigger(self._routing_key, message))
        if message.kind == "test":
            # A test must not leave an open incident on someone's pager.
            self._post(pagerduty_resolve(self._routing_key, message.dedup_key))
        return report

    def _post(self, event: dict[str, Any]) -> DeliveryReport:
        response = self._transport.post_json(self.name, self._events_url, event)
        check_status(self.name, response, secrets=(self._routing_key,))
        answer = response.json()
        dedup = answer.get("dedup_key", "") if isinstance(answer, dict) else ""
        return DeliveryReport(self.name, response.status, f"dedup_key={dedup}" if dedup else "")


def pagerduty_trigger(routing_key: str, message: Message) -> dict[str, Any]:
    """The Events v2 ``trigger`` for ``message`` (``info`` severity for a test)."""
    severity = "info" if message.kind == "test" else message.severity
    event: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": message.dedup_key,
        "payload": {
            "summary": _summary(message.title),
            "source": message.source or "remediator",
            "severity": severity if severity in SEVERITIES else "error",
            "group": message.team,
            "custom_details": _details(message),
        },
        "client": _CLIENT,
    }
    if message.links:
        event["links"] = [{"href": url, "text": label} for label, url in message.links.items()]
    return event


def pagerduty_resolve(routing_key: str, dedup_key: str) -> dict[str, Any]:
    """The Events v2 ``resolve`` that closes the alert opened under ``dedup_key``."""
    return {"routing_key": routing_key, "event_action": "resolve", "dedup_key": dedup_key}


def _summary(title: str) -> str:
    title = " ".join(title.split())
    return title if len(title) <= SUMMARY_MAX else title[: SUMMARY_MAX - 1] + "…"


def _details(message: Message) -> dict[str, Any]:
    text = message.text
    if len(text.encode("utf-8")) > _DETAILS_TEXT_MAX:
        text = text.encode("utf-8")[:_DETAILS_TEXT_MAX].decode("utf-8", "ignore") + "…"
    details = {"incident_id": message.incident_id, "team": message.team,
               "level": message.level, "text": text, **message.fields}
    # Be sure the whole thing serialises; a field value that does not is shown as text.
    return json.loads(json.dumps(details, default=str))
