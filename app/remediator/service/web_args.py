"""What the API's views read from a request: limits, yes/no flags, row ids; and their
answers: an error, a list of records, one record or 404. Shared by the app's blueprints
(web_api, web_escalation)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from flask import Response, jsonify, request

from remediator.store import MAX_ROW_ID

__all__ = ["bool_arg", "check_ids", "error", "items", "limit_arg", "view_or_404"]

_TRUE = frozenset({"", "1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def error(status: int, message: str) -> tuple[Response, int]:
    return jsonify({"error": message}), status


class _Viewed(Protocol):
    def view(self) -> dict[str, Any]: ...


def items(records: Iterable[_Viewed]) -> Response:
    """A list answer: ``{"items": [each record's API view]}``."""
    return jsonify({"items": [r.view() for r in records]})


def view_or_404(found: _Viewed | None, missing: str) -> tuple[Response, int]:
    """The record's API view, or 404 with ``missing`` (e.g. "no incident 7")."""
    return (jsonify(found.view()), 200) if found is not None else error(404, missing)


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
