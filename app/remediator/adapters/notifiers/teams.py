"""Microsoft Teams through a Workflows (Power Automate) webhook: one Adaptive Card.

The "Post to a channel when a webhook request is received" workflow takes a message whose
attachment is an Adaptive Card and answers 202. Card text is plain (TextBlock), so nothing
is HTML-escaped here.
"""

from __future__ import annotations

from typing import Any, Final

from remediator.adapters.notifiers.base import Message
from remediator.adapters.notifiers.json_webhook import JsonFormat

__all__ = ["TEAMS_FORMAT", "teams_payload"]

_COLOR: Final = {"critical": "Attention", "error": "Attention", "warning": "Warning",
                 "info": "Default"}
_TEXT_MAX: Final = 20_000  # Workflows rejects cards over ~28 KB


def teams_payload(message: Message) -> dict[str, Any]:
    """The Workflows message: title, text, facts, and one button per link."""
    color = "Good" if message.kind == "resolve" else _COLOR.get(message.severity, "Default")
    body: list[dict[str, Any]] = [
        {"type": "TextBlock", "text": message.title, "weight": "Bolder", "size": "Medium",
         "color": color, "wrap": True},
        {"type": "TextBlock", "text": message.text[:_TEXT_MAX], "wrap": True},
    ]
    if message.fields:
        body.append({"type": "FactSet", "facts": [
            {"title": key, "value": value} for key, value in message.fields.items()
        ]})
    card: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
        "actions": [{"type": "Action.OpenUrl", "title": label, "url": url}
                    for label, url in message.links.items()],
    }
    return {"type": "message", "attachments": [{
        "contentType": "application/vnd.microsoft.card.adaptive",
        "contentUrl": None,
        "content": card,
    }]}


TEAMS_FORMAT: Final = JsonFormat(teams_payload)
"""The Workflows message (it answers 202 with nothing to keep)."""
