"""A stand-in for PagerDuty's Events API v2 that validates events the way PagerDuty does.

    with PagerDutySink() as pagerduty:          # .url is http://127.0.0.1:PORT/v2/enqueue
        ...
        assert pagerduty.verdicts == [202]
        assert pagerduty.events[0]["payload"]["severity"] == "critical"

Valid events get 202 ``{"status": "success", "message": "Event processed", "dedup_key":
...}``; invalid ones 400 ``{"status": "invalid event", "message": "Event object is
invalid", "errors": [...]}``. Queued responses (``set_responses([503, 429])``) are answered
first, as with HttpSink, to simulate an outage or rate limiting.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any, Final

from tests.support.http_sink import HttpSink, RecordedRequest, normalise_response

__all__ = ["PagerDutySink", "validate_event"]

MAX_EVENT_BYTES: Final = 512 * 1024
ROUTING_KEY_LENGTH: Final = 32
SUMMARY_MAX: Final = 1024
DEDUP_KEY_MAX: Final = 255
SEVERITIES: Final = ("critical", "error", "warning", "info")
ACTIONS: Final = ("trigger", "acknowledge", "resolve")


def validate_event(body: bytes) -> list[str]:
    """PagerDuty's objections to ``body`` (empty when it would accept the event)."""
    if len(body) > MAX_EVENT_BYTES:
        return [f"Event object is too large ({len(body)} bytes; limit is 512 KB)"]
    try:
        event = json.loads(body)
    except ValueError:
        return ["Event object is not valid JSON"]
    if not isinstance(event, dict):
        return ["Event object must be a JSON object"]
    errors = _routing_key_errors(event) + _action_errors(event)
    if event.get("event_action") == "trigger":
        errors += _payload_errors(event.get("payload"))
    return errors


def _routing_key_errors(event: Mapping[str, Any]) -> list[str]:
    key = event.get("routing_key")
    if not isinstance(key, str) or not key.strip():
        return ["'routing_key' is missing or blank"]
    if len(key) != ROUTING_KEY_LENGTH:
        return [f"Length of 'routing_key' is incorrect (should be {ROUTING_KEY_LENGTH} "
                "characters)"]
    return []


def _action_errors(event: Mapping[str, Any]) -> list[str]:
    action = event.get("event_action")
    errors = []
    if action not in ACTIONS:
        errors.append("'event_action' is invalid (must be one of: trigger, acknowledge, "
                      "resolve)")
    dedup = event.get("dedup_key")
    if action in ("acknowledge", "resolve") and not (isinstance(dedup, str) and dedup):
        errors.append(f"'dedup_key' is required for event_action {action}")
    if dedup is not None and (not isinstance(dedup, str) or len(dedup) > DEDUP_KEY_MAX):
        errors.append(f"'dedup_key' must be a string of at most {DEDUP_KEY_MAX} characters")
    return errors


def _payload_errors(payload: object) -> list[str]:
    if not isinstance(payload, dict):
        return ["'payload' is missing or not an object"]
    errors = []
    summary = payload.get("summary")
    if not isinstance(summary, str) or not summary.strip():
        errors.append("'payload.summary' is missing or blank")
    elif len(summary) > SUMMARY_MAX:
        errors.append(f"'payload.summary' is longer than {SUMMARY_MAX} characters")
    source = payload.get("source")
    if not isinstance(source, str) or not source.strip():
        errors.append("'payload.source' is missing or blank")
    if payload.get("severity") not in SEVERITIES:
        errors.append("'payload.severity' is invalid (must be one of: critical, error, "
                      "warning, info)")
    return errors


class PagerDutySink(HttpSink):
    """HttpSink at ``/v2/enqueue`` that judges each event; see the module docstring."""

    def __init__(self) -> None:
        super().__init__(path="/v2/enqueue", default_status=202)
        self.verdicts: list[int] = []
        self.rejections: list[list[str]] = []
        self._events: list[dict[str, Any]] = []

    @property
    def events(self) -> list[dict[str, Any]]:
        """Events PagerDuty would have accepted, in arrival order."""
        with self._lock:
            return list(self._events)

    def respond(self, request: RecordedRequest) -> tuple[int, Mapping[str, str], bytes]:
        queued = self._next_queued()
        if queued is not None:
            status, headers, body = normalise_response(queued)
        else:
            status, headers, body = self._judge(request)
        with self._lock:
            self.verdicts.append(status)
        return status, headers, body

    def _judge(self, request: RecordedRequest) -> tuple[int, Mapping[str, str], bytes]:
        errors = validate_event(request.body)
        if errors:
            with self._lock:
                self.rejections.append(errors)
            answer: dict[str, Any] = {"status": "invalid event",
                                      "message": "Event object is invalid", "errors": errors}
            return 400, {"Content-Type": "application/json"}, json.dumps(answer).encode()
        event = request.json()
        with self._lock:
            self._events.append(event)
        dedup = event.get("dedup_key") or uuid.uuid4().hex
        answer = {"status": "success", "message": "Event processed", "dedup_key": dedup}
        return 202, {"Content-Type": "application/json"}, json.dumps(answer).encode()
