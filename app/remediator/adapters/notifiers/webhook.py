"""Generic JSON webhook: the message as a flat, versioned JSON document.

For ticketing systems, chat bridges and anything else that takes a POST. The body is
stable (``"version": "1"``); new keys may be added, existing ones keep their meaning.
"""

from __future__ import annotations

from typing import Any, Final

from remediator.adapters.notifiers.base import Message
from remediator.adapters.notifiers.json_webhook import JsonFormat

__all__ = ["WEBHOOK_FORMAT", "webhook_payload"]


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


WEBHOOK_FORMAT: Final = JsonFormat(webhook_payload)
"""The flat document (its URL may embed a token; the answer is not kept)."""
