"""The Flask app: Alertmanager's webhook, the read and control API, health and metrics.

`create_app(service)` builds a fresh app around a Service (store, worker, metrics); no app
object exists at import time.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
from typing import IO, Any

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException
from werkzeug.wsgi import get_input_stream

from remediator.core import defaults
from remediator.errors import StoreError
from remediator.service.build import Service
from remediator.service.web_api import api_blueprint
from remediator.service.web_args import check_ids, error
from remediator.service.web_escalation import escalation_blueprint
from remediator.service.web_probes import probes_blueprint
from remediator.service.webhook import STORE_DOWN, TOO_LARGE, receive_webhook

__all__ = ["NOT_HERE", "STORE_DOWN", "create_app"]

log = logging.getLogger("remediator.service.web")

WEBHOOK_PATH = "/api/v1/alerts"
"""Alertmanager's webhook: the only route `remediator_webhook_requests_total` counts."""

NOT_HERE = ("this replica runs with --role worker and does not take alerts: point "
            "Alertmanager at a replica started with --role all or --role intake")
"""The webhook's 404 on a `worker` replica (a wrong route, not a passing outage: Alertmanager
does not retry it, and the leader's reconciliation picks up what it missed)."""


def presented_token(header: str) -> str | None:
    """The secret in `Authorization: Bearer T` or `Basic base64(user:T)`, as Alertmanager sends."""
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer":
        return value.strip()
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[2]
    return None


def authorized(service: Service) -> bool:
    if service.token is None:
        return True  # started with --insecure-no-auth
    token = presented_token(request.headers.get("Authorization", ""))
    return token is not None and hmac.compare_digest(token.encode(), service.token.encode())


def read_body(stream: IO[bytes], cap: int) -> bytes:
    """Up to `cap` bytes of the request body, however the stream hands them out."""
    chunks: list[bytes] = []
    size = 0
    while size < cap:
        chunk = stream.read(cap - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def create_app(service: Service) -> Flask:
    app = Flask("remediator")
    app.config["MAX_CONTENT_LENGTH"] = defaults.MAX_WEBHOOK_BODY_BYTES

    @app.before_request
    def check_auth() -> tuple[Response, int] | None:
        if request.path.startswith("/api/") and not authorized(service):
            if request.path == WEBHOOK_PATH:
                service.metrics.webhook_requests.labels(code="401").inc()
            return error(401, "missing or wrong credentials (Authorization: Bearer <token>)")
        return None

    app.before_request(check_ids)  # after auth: an unauthenticated caller learns nothing

    @app.post(WEBHOOK_PATH)
    def alerts() -> tuple[Response, int]:
        status, body = receive(service) if service.takes_alerts else (404,
                                                                      {"error": NOT_HERE})
        service.metrics.webhook_requests.labels(code=str(status)).inc()
        return jsonify(body), status

    @app.errorhandler(413)
    def too_large(_: Exception) -> tuple[Response, int]:
        if request.path == WEBHOOK_PATH:
            service.metrics.webhook_requests.labels(code="413").inc()
        return error(413, TOO_LARGE)

    @app.errorhandler(HTTPException)
    def api_error(exc: HTTPException) -> Response | HTTPException:
        return api_error_response(exc) if request.path.startswith("/api/") else exc

    @app.errorhandler(StoreError)
    def store_down(exc: StoreError) -> tuple[Response, int]:
        # The database away (or refusing): a 503 to retry, never a 500 with a traceback.
        log.error("%s %s: %s", request.method, request.path, exc)
        return error(503, STORE_DOWN)

    app.register_blueprint(api_blueprint(service))
    app.register_blueprint(escalation_blueprint(service))
    app.register_blueprint(probes_blueprint(service))
    return app


def api_error_response(exc: HTTPException) -> Response:
    """An HTTP error under /api/ as JSON, as every other API answer (headers such as
    405's Allow kept)."""
    messages = {404: f"no such endpoint: {request.path}",
                405: f"{request.method} is not allowed on {request.path}"}
    code = exc.code or 500
    response = jsonify({"error": messages.get(code, exc.description)})
    response.status_code = code
    for name, value in exc.get_headers():
        if name.lower() != "content-type":
            response.headers[name] = value
    return response


def receive(service: Service) -> tuple[int, dict[str, Any]]:
    """The webhook's answer to this request (the rules: remediator.service.webhook)."""
    # A chunked body has no Content-Length for Flask to refuse up front, and Flask's stream
    # would stop silently at the limit: the rules read one byte past it.
    stream = get_input_stream(request.environ,
                              max_content_length=defaults.MAX_WEBHOOK_BODY_BYTES + 1)
    answer = receive_webhook(service, request.mimetype, request.content_type,
                             lambda cap: read_body(stream, cap))
    return answer.status, answer.body
