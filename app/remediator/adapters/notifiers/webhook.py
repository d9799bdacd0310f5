"""Generic JSON webhook: the message as a flat, versioned JSON document.

For ticketing systems, chat bridges and anything else that takes a POST. The body is
stable (``"version": "1"``); new keys may be added, existing ones keep their meaning.
"""

from __future__ import annotations

from typing import Any

from remediator.adapters.notifiers._transport import (
    HttpTransport,
    check_status,
    url_secrets,
)
from remediator.adapters.notifiers.base import DeliveryReport, Message

__all__ = ["WebhookNotifier", "webhook_payload"]


class WebhookNotifier:
    """POSTs ``webhook_payload(message)`` to one URL (which may embed a token)."""

    def __init__(self, name: str, url: str, transport: HttpTransport) -> None:
        self.name = name
        self._url = url
        self._transport = transport

    def send(self, message: Message) -> DeliveryReport:
        response = self._transport.post_json(self.name, self._url, webhook_payload(message))
        check_status(self.name, response, secrets=url_secrets(self._url))
        return DeliveryReport(self.name, response.status)


def webhook_payload(message: Message) -> dict[str, Any]:
    """Every field of the message except the HTML rendering."""
    return {
        "version": "1",
        "sender": "remediator",
        "kind": message.kind,
        "team": message.team,
        "level": message.level,
        "severity": message.severity,
        "title": message.title,
        "text": message.text,
        "incident_id": message.incident_id,
        "dedup_key": message.dedup_key,
        "source": message.source,
        "links": dict(message.links),
        "fields": dict(message.fields),
    }
