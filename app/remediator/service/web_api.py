"""The read and control API: incidents, executions and replays, reports, dead letters,
pause and resume (paths under /api/v1; the app's bearer auth applies)."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from remediator.service.build import Service
from remediator.service.report import render_report
from remediator.service.web_args import bool_arg, error, items, limit_arg, view_or_404

__all__ = ["api_blueprint"]


def api_blueprint(service: Service) -> Blueprint:
    """Incidents, executions (and replay), reports, dead letters, pause and resume."""
    api = Blueprint("api", __name__)
    store = service.store

    @api.get("/api/v1/incidents")
    def incidents() -> Response:
        return items(store.incidents(limit_arg()))

    @api.get("/api/v1/incidents/<int:incident_id>")
    def incident(incident_id: int) -> tuple[Response, int]:
        return view_or_404(store.incident(incident_id), f"no incident {incident_id}")

    @api.get("/api/v1/executions")
    def executions() -> Response:
        return items(store.executions(limit_arg()))

    @api.get("/api/v1/executions/<int:execution_id>")
    def execution(execution_id: int) -> tuple[Response, int]:
        return view_or_404(store.execution(execution_id), f"no execution {execution_id}")

    @api.post("/api/v1/executions/<int:execution_id>/replay")
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

    @api.get("/api/v1/incidents/<int:incident_id>/report")
    def report(incident_id: int) -> tuple[Response, int]:
        found = store.incident(incident_id)
        if found is None:
            return error(404, f"no incident {incident_id}")
        text = render_report(found.view(),
                             [e.view() for e in store.executions_for(incident_id)])
        return Response(text, mimetype="text/markdown"), 200

    @api.get("/api/v1/dead-letters")
    def dead_letters() -> Response:
        return items(store.dead_letters(limit_arg()))

    @api.post("/api/v1/pause")
    def pause() -> Response:
        service.set_paused(True)
        return jsonify({"paused": True})

    @api.post("/api/v1/resume")
    def resume() -> Response:
        service.set_paused(False)
        return jsonify({"paused": False})

    return api
