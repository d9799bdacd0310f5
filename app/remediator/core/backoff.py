"""When to try a failed notification again, and when to stop.

Exponential backoff with bounded jitter: attempt ``n`` (1-based: the first *retry* is
attempt 1) waits between half and all of ``base * 2**(n-1)`` seconds, never more than
``cap`` (five minutes).  The jitter keeps many outbox rows that failed together (Slack down
for a minute) from hammering the endpoint in lock-step when it comes back; bounding it
below at half the step keeps the schedule predictable enough to reason about in a runbook.

Retrying stops by time, not by count: a notification is retried (429, 5xx, network
errors) until it is ``give_up_after`` old (:data:`DEFAULT_GIVE_UP_SECONDS`, one hour, unless
the escalation policy says otherwise), so a page survives a PagerDuty or Slack outage of
tens of minutes; with the five-minute cap, an endpoint that comes back is tried again
within five minutes (unless its Retry-After asked for longer). Other 4xx answers fail at
once (retrying cannot help).

A server that says ``Retry-After`` knows better than we do, so its value wins when it is
longer than our own schedule (it is clamped, so a hostile or broken header cannot park a
notification for a day).
"""

from __future__ import annotations

import random
from collections.abc import Callable

__all__ = [
    "DEFAULT_BASE_SECONDS",
    "DEFAULT_CAP_SECONDS",
    "DEFAULT_GIVE_UP_SECONDS",
    "MAX_RETRY_AFTER_SECONDS",
    "next_attempt_delay",
]

DEFAULT_GIVE_UP_SECONDS = 3600.0
"""A notification still failing (429, 5xx, network) this long after it was accepted fails."""

DEFAULT_BASE_SECONDS = 2.0
"""First retry waits between 1 and 2 seconds."""

DEFAULT_CAP_SECONDS = 300.0
"""No computed wait is longer than five minutes."""

MAX_RETRY_AFTER_SECONDS = 3600.0
"""The longest ``Retry-After`` honoured; longer values are clamped to this."""


def next_attempt_delay(
    attempt: int,
    retry_after: float | None = None,
    base: float = DEFAULT_BASE_SECONDS,
    cap: float = DEFAULT_CAP_SECONDS,
    rand: Callable[[], float] = random.random,
) -> float:
    """Seconds to wait before retry number ``attempt`` (1-based).

    ``retry_after`` is the server's ``Retry-After`` in seconds, if it sent one. ``rand``
    returns a float in [0, 1); tests pass a constant to make the result exact.
    """
    if attempt < 1:
        raise ValueError(f"attempt must be >= 1, got {attempt}")
    step = min(cap, base * 2.0 ** min(attempt - 1, 62))
    delay = step / 2.0 + (step / 2.0) * rand()
    if retry_after is not None and retry_after > 0:
        delay = max(delay, min(float(retry_after), MAX_RETRY_AFTER_SECONDS))
    return delay
