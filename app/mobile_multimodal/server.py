"""The Flask app and its production server (gunicorn: one process, threads).

Endpoints: GET /health (the runbook's JSON; 200 healthy or degraded, 503 with the reason
when no model serves), GET /model/health, POST /model/inference, POST /model/reload,
GET /v2/health/live and /v2/health/ready (Open Inference Protocol), GET /metrics; POST
/debug/* only with MODEL_DEBUG_FAULTS=1. Bad input is a 400 ``{"error": ...}``, never a 500.

One process keeps the model and the metrics together: no multiprocess metric juggling.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import re
import time
from pathlib import Path
from typing import Any

from flask import Flask, Response, jsonify, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from werkzeug.exceptions import HTTPException

from mobile_multimodal import debug
from mobile_multimodal.config import ServeConfig, load_config
from mobile_multimodal.errors import InvalidImage, ModelConfigError
from mobile_multimodal.manager import ModelManager, ModelState, resident_bytes
from mobile_multimodal.metrics import ServingMetrics

__all__ = ["build_manager", "create_app", "serve"]

log = logging.getLogger("mobile_multimodal.server")

TASKS = ("captioning",)
"""Inference tasks this server answers."""


DRAIN_LIMIT = 64 * 2**20
"""Bytes of an oversized body read and dropped before answering 400."""


def bad_request(message: str) -> tuple[Response, int]:
    return jsonify({"error": message}), 400


def drain_body(limit: int = DRAIN_LIMIT) -> None:
    """Read and drop the unread body of a refused request (up to ``limit`` bytes).

    Closing a socket with unread bytes makes the kernel send a reset, which destroys the
    400 before the client reads it ("connection aborted" instead of an error message).
    """
    stream = request.environ.get("wsgi.input")
    left = limit
    while stream is not None and left > 0:
        chunk = stream.read(min(left, 1 << 16))
        if not chunk:
            break
        left -= len(chunk)


def health_answer(manager: ModelManager) -> tuple[dict[str, Any], int]:
    """/health: 200 healthy (primary READY), 200 degraded (fallback), else 503 with why."""
    status = manager.status
    body: dict[str, Any] = {"status": "healthy", "model_loaded": status.model_loaded}
    if status.state is ModelState.DEGRADED:
        body.update(status="degraded", fallback_active=True, reason=status.reason)
        return body, 200
    if status.state is not ModelState.READY:
        body.update(status=status.state.value.lower(), reason=status.reason)
        return body, 503
    return body, 200


def model_health_answer(manager: ModelManager) -> dict[str, Any]:
    """/model/health: the runbook's fields, then the manager's state and why."""
    status = manager.status
    return {
        "model_loaded": status.model_loaded,
        "model_type": status.model_type,
        "memory_usage_mb": round(resident_bytes() / 2**20, 1),
        "last_inference_time": manager.last_inference_time,
        "inference_count": manager.inference_count,
        "state": status.state.value,
        "reason": status.reason,
        "variant": status.variant,
        "fallback_active": status.fallback_active,
        "fallback_available": status.fallback_available,
        "checksum_ok": status.checksum_ok,
        "device": status.device,
        "model_path": str(manager.model_path()),
        "fallback_model": manager.config.fallback_model,
        "loading": manager.loading,
        "last_load_seconds": manager.last_load_seconds,
        "last_error": manager.last_error,
    }


def create_app(manager: ModelManager) -> Flask:
    app = Flask("mobile_multimodal")
    # base64 grows 4/3; room for the JSON around it. Larger bodies are refused unread.
    app.config["MAX_CONTENT_LENGTH"] = manager.config.max_image_bytes * 4 // 3 + 4096

    @app.get("/health")
    def health() -> tuple[Response, int]:
        body, code = health_answer(manager)
        return jsonify(body), code

    @app.get("/model/health")
    def model_health() -> Response:
        return jsonify(model_health_answer(manager))

    @app.post("/model/reload")
    def reload() -> tuple[Response, int]:
        started = manager.reload()
        body: dict[str, Any] = {"reloading": started, "state": manager.status.state.value}
        if not started:
            body["reason"] = manager.busy() or "a model load is already running"
        return jsonify(body), 202 if started else 409

    @app.get("/v2/health/live")
    def live() -> tuple[str, int]:
        return "", 200

    @app.get("/v2/health/ready")
    def ready() -> tuple[str, int]:
        return "", 200 if manager.status.serving else 503

    @app.post("/model/inference")
    def inference() -> tuple[Response, int]:
        return run_inference(manager)

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(manager.metrics.registry), mimetype=CONTENT_TYPE_LATEST)

    register_errors(app, manager.config.max_image_bytes)
    debug.register(app, os.environ)
    return app


def register_errors(app: Flask, max_image_bytes: int) -> None:
    """Every error answers JSON ``{"error": ...}``; a body over the limit is a 400."""

    @app.errorhandler(413)
    def too_large(_: Exception) -> tuple[Response, int]:
        drain_body()
        return bad_request(f"request body too large (image limit {max_image_bytes} bytes)")

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> tuple[Response, int]:
        return jsonify({"error": f"{exc.code} {exc.name}"}), exc.code or 500

    @app.errorhandler(Exception)
    def internal_error(exc: Exception) -> tuple[Response, int]:
        log.exception("Unhandled error serving %s %s", request.method, request.path)
        return jsonify({"error": f"internal error: {type(exc).__name__}"}), 500


DATA_URL = re.compile(r"^data:image/[\w.+-]+;base64,")
"""A ``data:image/png;base64,`` prefix, accepted and dropped."""


def decode_base64(image: str) -> bytes:
    """Strict base64 (whitespace and line breaks, as `base64` wraps, are ignored)."""
    text = "".join(DATA_URL.sub("", image.strip(), count=1).split())
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("field 'image' is not valid base64") from None


def decode_request(max_bytes: int) -> tuple[bytes, str]:
    """The image bytes and task of an inference request; ValueError says what is wrong."""
    try:
        body = request.get_json(silent=True)
    except RecursionError:  # silent=True covers ValueError only; nesting overflows the parser
        raise ValueError("body is not usable JSON: nested too deeply") from None
    if not isinstance(body, dict):
        raise ValueError("body must be a JSON object with 'image' and 'task'")
    task, image = body.get("task", "captioning"), body.get("image")
    if not isinstance(task, str) or task not in TASKS:
        raise ValueError(f"unknown task {task!r}; supported: {', '.join(TASKS)}")
    if not isinstance(image, str) or not image.strip():
        raise ValueError("missing field 'image' (a base64-encoded PNG or JPEG)")
    data = decode_base64(image)
    if not data:
        raise ValueError("field 'image' is empty once decoded")
    if len(data) > max_bytes:
        raise ValueError(f"image is {len(data)} bytes; the limit is {max_bytes}")
    return data, task


def run_inference(manager: ModelManager) -> tuple[Response, int]:
    metrics = manager.metrics
    try:
        data, task = decode_request(manager.config.max_image_bytes)
    except ValueError as exc:
        metrics.inference_requests.labels(task="captioning", outcome="bad_request").inc()
        return bad_request(str(exc))
    started = time.perf_counter()
    try:
        caption, variant = manager.caption(data)
    except InvalidImage as exc:
        metrics.inference_requests.labels(task=task, outcome="bad_request").inc()
        return bad_request(str(exc))
    except LookupError as exc:
        metrics.inference_requests.labels(task=task, outcome="unavailable").inc()
        return jsonify({"error": f"no model loaded: {exc.args[0]}"}), 503
    elapsed = time.perf_counter() - started
    metrics.inference_duration.observe(elapsed)
    metrics.inference_requests.labels(task=task, outcome="ok").inc()
    return jsonify({"caption": caption, "variant": variant, "task": task,
                    "latency_ms": round(elapsed * 1000, 2)}), 200


def build_manager(config_path: Path | None, model_dir: Path | None,
                  registry: CollectorRegistry | None = None,
                  oom_marker: Path | None = None) -> ModelManager:
    """A manager for this config; an invalid config is reported, not raised."""
    metrics = ServingMetrics(registry or CollectorRegistry())
    try:
        config = load_config(config_path, model_dir=model_dir)
        error = None
    except ModelConfigError as exc:
        config = ServeConfig(model_dir=model_dir or ServeConfig().model_dir)
        error = exc
    return ModelManager(config, metrics, config_error=error,
                        config_source=lambda: load_config(config_path, model_dir=model_dir),
                        oom_marker=oom_marker)


def serve(host: str, port: int, model_dir: Path | None, config_path: Path | None,
          threads: int = 4) -> None:
    """Run under gunicorn: one worker process with threads; SIGTERM shuts down cleanly
    (within 8 s, before Docker's 10 s SIGKILL); an OOM-killed worker ends the container."""
    from gunicorn.app.base import BaseApplication

    from mobile_multimodal.oom import OOM_MARKER, OomWatch

    settings = {"bind": f"{host}:{port}", "workers": 1, "threads": threads,
                "worker_class": "gthread", "timeout": 60, "graceful_timeout": 8,
                "accesslog": None, "loglevel": "info", "control_socket_disable": True,
                "child_exit": OomWatch()}

    class Server(BaseApplication):
        def load_config(self) -> None:
            for key, value in settings.items():
                if key in self.cfg.settings:
                    self.cfg.set(key, value)

        def load(self) -> Flask:
            manager = build_manager(config_path, model_dir, oom_marker=OOM_MARKER)
            manager.start()
            return create_app(manager)

    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    Server().run()
