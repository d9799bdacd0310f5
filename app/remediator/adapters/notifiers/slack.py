"""Slack incoming webhook: the JSON for a message, a short ``text`` (what the phone
notification shows) plus blocks.

Slack answers 200 ``ok``; 429 with ``Retry-After`` when rate limited (one message per
second per webhook); 4xx with a reason word (``invalid_payload``, ``channel_not_found``).
"""

from __future__ import annotations

from typing import Any, Final

from remediator.adapters.notifiers.base import Message
from remediator.adapters.notifiers.json_webhook import JsonFormat

__all__ = ["SLACK_FORMAT", "slack_payload"]

_SECTION_MAX: Final = 3000  # Slack rejects a section text longer than this
_HEADER_MAX: Final = 150
_FIELDS_MAX: Final = 10
_EMOJI: Final = {"trigger": ":rotating_light:", "resolve": ":white_check_mark:",
                 "info": ":information_source:", "test": ":test_tube:"}


def slack_payload(message: Message) -> dict[str, Any]:
    """The JSON body for ``message``: ``text`` fallback plus header, body, fields, links."""
    title = f"{_EMOJI.get(message.kind, '')} {escape(message.title)}".strip()
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _cut(message.title,
                                                                        _HEADER_MAX)}},
        {"type": "section", "text": {"type": "mrkdwn",
                                     "text": _cut(escape(message.text), _SECTION_MAX)}},
    ]
    if message.fields:
        blocks.append({"type": "section", "fields": [
            {"type": "mrkdwn", "text": _cut(f"*{escape(k)}*\n{escape(v)}", 2000)}
            for k, v in list(message.fields.items())[:_FIELDS_MAX]
        ]})
    if message.links:
        links = " · ".join(f"<{_link(url)}|{escape(label)}>"
                           for label, url in message.links.items())
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": links}]})
    return {"text": title, "blocks": blocks}


def escape(text: str) -> str:
    """Slack's three control characters; a label value of ``<!channel>`` stays harmless."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _link(url: str) -> str:
    return escape(url).replace("|", "%7C")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


SLACK_FORMAT: Final = JsonFormat(slack_payload, keep_answer=True)
"""Slack's JSON; its short answer (``ok``) is kept in the delivery report."""
