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
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from werkzeug.exceptions import HTTPException
from werkzeug.wsgi import get_input_stream

from remediator.core.alerts import parse_webhook
from remediator.errors import PayloadError, StoreError
from remediator.report import render_report
from remediator.service import Service
from remediator.store import MAX_ROW_ID
from remediator.web_escalation import register_escalation_api

__all__ = ["MAX_BODY_BYTES", "create_app"]

log = logging.getLogger("remediator.web")

MAX_BODY_BYTES = 1 * 2**20
"""Largest webhook body accepted (413 above)."""

TOO_LARGE = f"body larger than {MAX_BODY_BYTES} bytes"

WEBHOOK_PATH = "/api/v1/alerts"
"""Alertmanager's webhook: the only route `remediator_webhook_requests_total` counts."""

NOT_HERE = ("this replica runs with --role worker and does not take alerts: point "
            "Alertmanager at a replica started with --role all or --role intake")
"""The webhook's 404 on a `worker` replica (a wrong route, not a passing outage: Alertmanager
does not retry it, and the leader's reconciliation picks up what it missed)."""

STORE_DOWN = "store unavailable; retry"
"""503's message when the database cannot be read or written."""

_TRUE = frozenset({"", "1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def error(status: int, message: str) -> tuple[Response, int]:
    return jsonify({"error": message}), status


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


def limit_arg(default: int = 50, cap: int = 1000) -> int:
    try:
        return max(1, min(cap, int(request.args.get("limit", default))))
    except ValueError:
        return default


def bool_arg(name: str) -> bool | None:
    """A yes/no query parameter: bare or empty is yes; None when present but unrecognised
    (the caller refuses it rather than guess: a wrong guess could run a real fix)."""
    value = request.args.get(name)
    if value is None:
        return False
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    return False if lowered in _FALSE else None


def check_ids() -> tuple[Response, int] | None:
    """An id in the path beyond SQLite's integer range names no row: 404, not a 500 from
    the driver's OverflowError."""
    for name, value in (request.view_args or {}).items():
        if name.endswith("_id") and isinstance(value, int) and not 0 <= value <= MAX_ROW_ID:
            return error(404, f"no {name.removesuffix('_id')} {value}")
    return None


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
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES

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

    register_api(app, service)
    register_escalation_api(app, service)
    register_probes(app, service)
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
    """Validate, then commit, then answer: 202 means the payload is on disk."""
    if request.mimetype != "application/json":
        return 415, {"error": f"expected Content-Type application/json, got "
                              f"{request.mimetype or 'none'}"}
    # A chunked body has no Content-Length for Flask to refuse up front, and Flask's stream
    # would stop silently at the limit: read one byte past it to tell "too large" apart.
    stream = get_input_stream(request.environ, max_content_length=MAX_BODY_BYTES + 1)
    body = read_body(stream, MAX_BODY_BYTES + 1)
    if len(body) > MAX_BODY_BYTES:
        return 413, {"error": TOO_LARGE}
    try:
        payload = parse_webhook(body)
    except PayloadError as exc:
        try:
            service.store.add_dead_letter(body, str(exc), request.content_type)
        except StoreError:
            log.exception("could not keep a dead letter")
            return 503, {"error": STORE_DOWN}
        service.metrics.dead_letters.inc()
        return 400, {"error": str(exc), "kept": "dead-letter"}
    try:
        inbox_id = service.writer.submit(body)
    except StoreError as exc:
        log.error("webhook not stored: %s", exc)
        return 503, {"error": STORE_DOWN}  # Alertmanager retries 5xx
    service.worker.wake()
    return 202, {"status": "accepted", "inbox_id": inbox_id, "alerts": len(payload.alerts)}


def register_api(app: Flask, service: Service) -> None:
    store = service.store

    @app.get("/api/v1/incidents")
    def incidents() -> Response:
        return jsonify({"items": [i.view() for i in store.incidents(limit_arg())]})

    @app.get("/api/v1/incidents/<int:incident_id>")
    def incident(incident_id: int) -> tuple[Response, int]:
        found = store.incident(incident_id)
        return (jsonify(found.view()), 200) if found else error(404,
                                                                f"no incident {incident_id}")

    @app.get("/api/v1/executions")
    def executions() -> Response:
        return jsonify({"items": [e.view() for e in store.executions(limit_arg())]})

    @app.get("/api/v1/executions/<int:execution_id>")
    def execution(execution_id: int) -> tuple[Response, int]:
        found = store.execution(execution_id)
        return (jsonify(found.view()), 200) if found else error(
            404, f"no execution {execution_id}")

    @app.post("/api/v1/executions/<int:execution_id>/replay")
    def replay(execution_id: int) -> tuple[Response, int]:
        dry_run = bool_arg("dry_run")
        if dry_run is None:
            return error(400, f"dry_run: expected true or false (also 1/0, yes/no, on/off), "
                              f"got {request.args['dry_run']!r}"[:200])
        new_id = store.add_replay(execution_id, dry_run)
        if new_id is None:
            return error(404, f"no execution {execution_id}")
        service.worker.wake()
        return jsonify({"execution_id": new_id, "replay_of": execution_id,
                        "dry_run": dry_run}), 202

    @app.get("/api/v1/incidents/<int:incident_id>/report")
    def report(incident_id: int) -> tuple[Response, int]:
        found = store.incident(incident_id)
        if found is None:
            return error(404, f"no incident {incident_id}")
        text = render_report(found.view(),
                             [e.view() for e in store.executions_for(incident_id)])
        return Response(text, mimetype="text/markdown"), 200

    @app.get("/api/v1/dead-letters")
    def dead_letters() -> Response:
        return jsonify({"items": [d.view() for d in store.dead_letters(limit_arg())]})

    @app.post("/api/v1/pause")
    def pause() -> Response:
        service.set_paused(True)
        return jsonify({"paused": True})

    @app.post("/api/v1/resume")
    def resume() -> Response:
        service.set_paused(False)
        return jsonify({"paused": False})


def register_probes(app: Flask, service: Service) -> None:
    @app.get("/healthz")
    def healthz() -> Response:
        return jsonify({"status": "ok"})

    @app.get("/readyz")
    def readyz() -> tuple[Response, int]:
        checks = service.readiness()
        # `engines` details each engine; `docker` already says whether any answers.
        ok = all(value is True for key, value in checks.items()
                 if key not in ("paused", "engines"))
        # `replica`: who answers (id, role, leader): facts, not checks.
        return jsonify({"ready": ok, **checks, "replica": service.replica()}), \
            200 if ok else 503

    @app.get("/metrics")
    def metrics() -> Response:
        service.refresh_gauges()
        return Response(generate_latest(service.metrics.registry), mimetype=CONTENT_TYPE_LATEST)
