"""The webhook's rules, without Flask (Flask's sansio lesson): content type, size, dead
letter, commit, answer.

The view hands over what it read from the request (the media type, the Content-Type header,
and a reader for the body) and sends back the answer; everything that decides the answer is
here, so tests call :func:`receive_webhook` directly, with no request.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from remediator.core import defaults
from remediator.core.alerts import parse_webhook
from remediator.errors import PayloadError, StoreError
from remediator.service.build import Service

__all__ = ["TOO_LARGE", "WebhookAnswer", "receive_webhook"]

log = logging.getLogger("remediator.service.webhook")

TOO_LARGE = f"body larger than {defaults.MAX_WEBHOOK_BODY_BYTES} bytes"
"""The 413 answer's error (also for a body Flask refuses from its Content-Length)."""

STORE_DOWN = "store unavailable; retry"
"""What a 503 says when the store cannot commit (Alertmanager retries 5xx)."""

_RETRY = {"error": STORE_DOWN}


@dataclass(frozen=True)
class WebhookAnswer:
    """What the webhook answers: an HTTP status and a JSON body."""

    status: int
    body: dict[str, Any]


def receive_webhook(service: Service, mimetype: str, content_type: str | None,
                    read: Callable[[int], bytes]) -> WebhookAnswer:
    """Validate, then commit, then answer: 202 means the payload is on disk.

    ``read(n)`` returns up to ``n`` bytes of the body; it is called only once the media type
    is JSON, and asked for one byte past the cap, to tell "too large" from "exactly the cap".
    A body that is not a valid payload is kept as a dead letter (400); a store that cannot
    keep it answers 503, so Alertmanager sends it again."""
    if mimetype != "application/json":
        return WebhookAnswer(415, {"error": "expected Content-Type application/json, got "
                                            f"{mimetype or 'none'}"})
    body = read(defaults.MAX_WEBHOOK_BODY_BYTES + 1)
    if len(body) > defaults.MAX_WEBHOOK_BODY_BYTES:
        return WebhookAnswer(413, {"error": TOO_LARGE})
    try:
        payload = parse_webhook(body)
    except PayloadError as exc:
        return _dead_letter(service, body, str(exc), content_type)
    try:
        inbox_id = service.writer.submit(body)
    except StoreError as exc:
        log.error("webhook not stored: %s", exc)
        return WebhookAnswer(503, dict(_RETRY))
    service.worker.wake()
    return WebhookAnswer(202, {"status": "accepted", "inbox_id": inbox_id,
                               "alerts": len(payload.alerts)})


def _dead_letter(service: Service, body: bytes, reason: str,
                 content_type: str | None) -> WebhookAnswer:
    try:
        service.store.add_dead_letter(body, reason, content_type)
    except StoreError:
        log.exception("could not keep a dead letter")
        return WebhookAnswer(503, dict(_RETRY))
    service.metrics.dead_letters.inc()
    return WebhookAnswer(400, {"error": reason, "kept": "dead-letter"})
