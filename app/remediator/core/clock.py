"""Time, one way: the injectable clock and the one timestamp text.

Everything that asks "what time is it" takes a :data:`Clock` (default :func:`utc_now`), so
tests move time instead of waiting; every timestamp written as text (the store, stored
results, resolved notices) is :func:`iso`, read back with :func:`parse_iso`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

__all__ = ["Clock", "iso", "now_iso", "parse_iso", "utc_now"]

Clock = Callable[[], datetime]
"""Returns the current moment, timezone-aware (UTC); injected so tests control time."""


def utc_now() -> datetime:
    """The real clock: now, in UTC."""
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    """The one timestamp text (UTC, microseconds, Z): sorts as it compares. A naive
    moment is taken as UTC."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def now_iso(clock: Clock = utc_now) -> str:
    """:func:`iso` of now."""
    return iso(clock())


def parse_iso(text: str) -> datetime:
    """Inverse of :func:`iso`; also reads Alertmanager's ``...Z`` and offsets (a moment
    without an offset is taken as UTC)."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
