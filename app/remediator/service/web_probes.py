"""Health, readiness and Prometheus metrics."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from remediator.service.build import Service

__all__ = ["probes_blueprint"]


def probes_blueprint(service: Service) -> Blueprint:
    """/healthz (the process answers), /readyz (store, Docker, engines), /metrics."""
    probes = Blueprint("probes", __name__)

    @probes.get("/healthz")
    def healthz() -> Response:
        return jsonify({"status": "ok"})

    @probes.get("/readyz")
    def readyz() -> tuple[Response, int]:
        checks = service.readiness()
        # `engines` details each engine; `docker` already says whether any answers.
        ok = all(value is True for key, value in checks.items()
                 if key not in ("paused", "engines"))
        # `replica`: who answers (id, role, leader): facts, not checks.
        return jsonify({"ready": ok, **checks, "replica": service.replica()}), \
            200 if ok else 503

    @probes.get("/metrics")
    def metrics() -> Response:
        service.refresh_gauges()
        return Response(generate_latest(service.metrics.registry), mimetype=CONTENT_TYPE_LATEST)

    return probes
