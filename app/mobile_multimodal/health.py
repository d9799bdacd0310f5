"""The container HEALTHCHECK probe: stdlib only, so it works even when the app is broken.

Docker runs ``python -c "from mobile_multimodal import MobileMultiModalLLM;
MobileMultiModalLLM.health_check()"``; a non-zero exit (SystemExit with a one-line reason)
marks the container unhealthy.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request

__all__ = ["DEFAULT_PORT", "health_check", "health_url"]

DEFAULT_PORT = "8080"
"""Port probed when env PORT is unset (the serving app's default)."""


def health_url() -> str:
    """``http://127.0.0.1:${PORT:-8080}/health``."""
    return f"http://127.0.0.1:{os.environ.get('PORT') or DEFAULT_PORT}/health"


def _fetch(url: str, timeout: float) -> tuple[int, bytes]:
    # No proxies: the probe targets this container's loopback, never a proxy's idea of it.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout) as response:
            return int(response.status), response.read(65536)
    except urllib.error.HTTPError as exc:
        raise SystemExit(f"unhealthy: {url} answered HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        cause = getattr(exc, "reason", exc)
        raise SystemExit(f"unhealthy: {url} unreachable: {cause}") from None


def health_check(url: str | None = None, timeout: float = 10.0) -> None:
    """Return quietly when /health answers 200 ``{"status": "healthy", ...}``; else exit 1."""
    target = url or health_url()
    status, body = _fetch(target, timeout)
    try:
        payload = json.loads(body)
    except ValueError:
        raise SystemExit(f"unhealthy: {target} answered non-JSON: {body[:80]!r}") from None
    healthy = (
        status == 200
        and isinstance(payload, dict)
        and payload.get("status") == "healthy"
        and payload.get("model_loaded", True) is True
    )
    if not healthy:
        raise SystemExit(f"unhealthy: {target} answered HTTP {status}: {body[:200]!r}")
