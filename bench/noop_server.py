"""The ceiling for bench_ingest: a no-op webhook served exactly as `remediator serve` is."""

from __future__ import annotations

import sys

from flask import Flask

from remediator.service.server import gunicorn_settings, run_gunicorn


def app() -> Flask:
    noop = Flask("noop")

    @noop.post("/api/v1/alerts")
    def alerts() -> tuple[str, int]:
        return '{"status": "accepted"}', 202

    return noop


if __name__ == "__main__":
    run_gunicorn(app, gunicorn_settings("127.0.0.1", int(sys.argv[1]), int(sys.argv[2])))
