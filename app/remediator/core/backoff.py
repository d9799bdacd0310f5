"""When to try a failed notification again, and when to stop.

Exponential backoff with bounded jitter: attempt ``n`` (1-based: the first *retry* is
attempt 1) waits between half and all of ``base * 2**(n-1)`` seconds, never more than
``cap`` (five minutes).  The jitter keeps many outbox rows that failed together (Slack down
for a minute) from hammering the endpoint in lock-step when it comes back; bounding it
below at half the step keeps the schedule predictable enough to reason about in a runbook.

Retrying stops by time, not by count: a notification is retried (429, 5xx, network
errors) until it is ``give_up_after`` old (:data:`defaults.NOTIFY_GIVE_UP_S`, one hour, unless
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

from remediator.core import defaults

__all__ = [
    "next_attempt_delay",
]


def next_attempt_delay(
    attempt: int,
    retry_after: float | None = None,
    base: float = defaults.NOTIFY_RETRY_BASE_S,
    cap: float = defaults.NOTIFY_RETRY_CAP_S,
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
        delay = max(delay, min(float(retry_after), defaults.MAX_RETRY_AFTER_S))
    return delay
