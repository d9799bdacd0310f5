"""The escalation part of the API: the notification outbox and claiming an incident.

A blueprint registered by ``web.create_app``; the API's bearer auth applies (paths under /api/).

- ``GET /api/v1/notifications`` — ``{"items": [...]}``, newest first, ``?limit=``; each
  item with its per-channel deliveries; reasons and errors are redacted.
- ``POST /api/v1/incidents/<id>/claim`` — body ``{"by": "alice"}``: a human takes over.
  200 with the claim, 400 without ``by``, 404 unknown incident, 409 claimed by someone
  else.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from remediator.core import defaults
from remediator.escalation import ClaimRefused
from remediator.service.build import Service
from remediator.service.web_args import error, limit_arg

__all__ = ["escalation_blueprint"]


def escalation_blueprint(service: Service) -> Blueprint:
    """The notifications and claim endpoints."""
    escalation = Blueprint("escalation", __name__)

    @escalation.get("/api/v1/notifications")
    def notifications() -> tuple[Response, int]:
        if service.escalation is None:
            return jsonify({"items": []}), 200
        return jsonify({"items": service.escalation.notifications(limit_arg())}), 200

    @escalation.post("/api/v1/incidents/<int:incident_id>/claim")
    def claim(incident_id: int) -> tuple[Response, int]:
        body = request.get_json(silent=True)
        by = body.get("by") if isinstance(body, dict) else None
        if not isinstance(by, str) or not by.strip() or len(by) > defaults.MAX_CLAIMANT_CHARS:
            return error(400, 'say who takes over: JSON body {"by": "<name>"}')
        if service.escalation is None:
            return error(503, "escalation is not running in this service")
        try:
            result = service.escalation.claim(incident_id, by)
        except ClaimRefused as exc:
            return error(404 if exc.why == "unknown" else 409, str(exc))
        return jsonify(result.to_dict()), 200

    return escalation
