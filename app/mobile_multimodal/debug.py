"""Memory growth on purpose, for exercising the ModelMemoryUsage alert. Off by default.

Only with ``MODEL_DEBUG_FAULTS=1`` in the environment:

- ``POST /debug/grow`` ``{"mb": N}`` keeps N more MiB resident (at most 4096 per call);
  ``POST /debug/release`` drops it all;
- ``MODEL_DEBUG_GROW_MB_PER_S=R`` grows by R MiB every second in the background, up to
  ``MODEL_DEBUG_GROW_MAX_MB`` (default 4096).

Every other runbook failure is injected from outside the app (files, modes, limits, config,
image); memory growth is the one that needs the process's help.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, jsonify, request

__all__ = ["Ballast", "enabled", "register"]

log = logging.getLogger("mobile_multimodal.debug")

MAX_GROW_MB = 4096
"""Largest growth one request (or the background growth in total) may ask for."""


def enabled(env: Mapping[str, str]) -> bool:
    return env.get("MODEL_DEBUG_FAULTS", "") == "1"


class Ballast:
    """Resident memory held on purpose (written bytes, so the pages are really resident)."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []
        self._lock = threading.Lock()

    @property
    def mb(self) -> int:
        return sum(len(c) for c in self._chunks) >> 20

    def grow(self, mb: int) -> int:
        chunk = b"\x01" * (mb << 20)
        with self._lock:
            self._chunks.append(chunk)
        return self.mb

    def release(self) -> None:
        with self._lock:
            self._chunks.clear()

    def grow_steadily(self, mb_per_s: float, limit_mb: int) -> threading.Thread:
        def run() -> None:
            carry = 0.0
            while self.mb < limit_mb:
                carry += mb_per_s
                if carry >= 1:
                    self.grow(min(int(carry), limit_mb - self.mb))
                    carry -= int(carry)
                time.sleep(1)

        thread = threading.Thread(target=run, name="debug-grow", daemon=True)
        thread.start()
        return thread


def _number(env: Mapping[str, str], name: str, default: float) -> float:
    try:
        return float(env.get(name, default))
    except ValueError:
        log.error("debug faults: %s=%r is not a number; using %s", name, env.get(name), default)
        return default


def _grow_request(ballast: Ballast) -> tuple[Response, int]:
    body: Any = request.get_json(silent=True)
    mb = body.get("mb") if isinstance(body, dict) else None
    if not isinstance(mb, int) or isinstance(mb, bool) or not 0 < mb <= MAX_GROW_MB:
        return jsonify({"error": f"body must be {{\"mb\": 1..{MAX_GROW_MB}}}"}), 400
    return jsonify({"held_mb": ballast.grow(mb)}), 200


def register(app: Flask, env: Mapping[str, str]) -> Ballast | None:
    """Add the debug routes (and start background growth) when MODEL_DEBUG_FAULTS=1."""
    if not enabled(env):
        return None
    ballast = Ballast()
    log.warning("MODEL_DEBUG_FAULTS=1: debug fault routes enabled (POST /debug/grow)")

    @app.post("/debug/grow")
    def grow() -> tuple[Response, int]:
        return _grow_request(ballast)

    @app.post("/debug/release")
    def release() -> Response:
        ballast.release()
        return jsonify({"held_mb": 0})

    rate = _number(env, "MODEL_DEBUG_GROW_MB_PER_S", 0)
    if rate > 0:
        limit = int(_number(env, "MODEL_DEBUG_GROW_MAX_MB", MAX_GROW_MB))
        log.warning("debug faults: growing %.1f MiB/s up to %d MiB", rate, limit)
        ballast.grow_steadily(rate, limit)
    return ballast
