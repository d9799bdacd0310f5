"""The one notifier for every JSON webhook (Slack, Teams, the generic webhook): it POSTs
what the channel's :class:`JsonFormat` builds from a message to one URL.

The URL is the credential (the path of a Slack hook, the signature of a Teams workflow,
a token in a generic one), so every part of it is masked should the endpoint echo it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from remediator.adapters.notifiers._transport import (
    HttpTransport,
    check_status,
    url_secrets,
)
from remediator.adapters.notifiers.base import DeliveryReport, Message

__all__ = ["JsonFormat", "JsonWebhookNotifier"]

_ANSWER_MAX: Final = 100  # a kept answer is a word ("ok"), not a page


@dataclass(frozen=True)
class JsonFormat:
    """How one kind of JSON webhook wants a message."""

    payload: Callable[[Message], dict[str, Any]]
    keep_answer: bool = False  # the answer says something worth storing (Slack's "ok")


class JsonWebhookNotifier:
    """POSTs ``fmt.payload(message)`` to one webhook URL."""

    def __init__(self, name: str, url: str, transport: HttpTransport, fmt: JsonFormat) -> None:
        self.name = name
        self._url = url
        self._transport = transport
        self._format = fmt

    def send(self, message: Message) -> DeliveryReport:
        response = self._transport.post_json(self.name, self._url, self._format.payload(message))
        check_status(self.name, response, secrets=url_secrets(self._url))
        if self._format.keep_answer:
            return DeliveryReport(self.name, response.status,
                                  response.text.strip()[:_ANSWER_MAX])
        return DeliveryReport(self.name, response.status)
