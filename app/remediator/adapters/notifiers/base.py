"""What every notifier shares: the message, the delivery report, and delivery semantics.

A notifier's ``send`` either returns a :class:`DeliveryReport` or raises
``NotifyRetryable`` (429, 5xx, network: try again later, maybe after ``retry_after``) or
``NotifyPermanent`` (another 4xx, bad configuration: retrying will not help). The outbox
turns those into rows with :func:`attempt_delivery`; ``notify-test`` and tests send
directly with :func:`dispatch`. Either way one channel failing never stops the others.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol

from remediator.core.backoff import next_attempt_delay
from remediator.core.defaults import NOTIFY_GIVE_UP_S
from remediator.core.escalation_channels import ChannelSpec
from remediator.errors import NotifyError, NotifyRetryable

__all__ = [
    "AttemptOutcome",
    "Channel",
    "ChannelResult",
    "DeliveryReport",
    "Message",
    "MessageKind",
    "Notifier",
    "attempt_delivery",
    "dispatch",
]

log = logging.getLogger(__name__)

MessageKind = Literal["trigger", "resolve", "info", "test"]


@dataclass(frozen=True)
class Message:
    """One notification, already rendered; every channel formats it its own way.

    ``text`` is plain text; ``html`` (optional) is the escaped HTML body for e-mail.
    ``links`` maps a label to an http(s) URL; ``fields`` are short label → value facts.
    ``source`` is what PagerDuty calls the affected system (the target).
    """

    kind: MessageKind
    team: str
    level: str
    title: str
    text: str
    incident_id: str
    dedup_key: str
    severity: str = "warning"
    links: Mapping[str, str] = field(default_factory=dict)
    fields: Mapping[str, str] = field(default_factory=dict)
    html: str = ""
    source: str = "remediator"


@dataclass(frozen=True)
class DeliveryReport:
    """A successful delivery: which channel, the HTTP/SMTP status, and what it said."""

    channel: str
    status_code: int | None = None
    detail: str = ""


class Notifier(Protocol):
    """Sends a message through one configured channel."""

    name: str

    def send(self, message: Message) -> DeliveryReport:
        """Deliver or raise NotifyRetryable(retry_after=...) / NotifyPermanent."""
        ...


@dataclass(frozen=True)
class Channel:
    """A team's channel after its settings were resolved from env/files.

    ``notifier`` is None when required settings are unset; ``skipped_reason`` says which
    (``PAGERDUTY_ROUTING_KEY unset``). Such a channel is skipped, which is not an error.
    """

    name: str
    type: str
    spec: ChannelSpec
    notifier: Notifier | None
    skipped_reason: str = ""

    @property
    def configured(self) -> bool:
        return self.notifier is not None

    def accepts(self, level: str) -> bool:
        return level in self.spec.levels

    def describe(self) -> dict[str, object]:
        """For the API and the report: where settings come from, never their values."""
        return {**self.spec.describe(), "configured": self.configured,
                "skipped_reason": self.skipped_reason}


OutcomeStatus = Literal["delivered", "retry", "failed", "not_configured", "skipped"]


@dataclass(frozen=True)
class AttemptOutcome:
    """What became of one delivery attempt; the outbox stores ``status`` and ``reason``."""

    status: OutcomeStatus
    reason: str = ""
    retry_in: float | None = None  # seconds, when status == "retry"
    report: DeliveryReport | None = None


def attempt_delivery(
    channel: Channel,
    message: Message,
    attempt: int = 1,
    max_attempts: int | None = None,
    rand: Callable[[], float] = random.random,
    *,
    age: float = 0.0,
    give_up_after: float = NOTIFY_GIVE_UP_S,
) -> AttemptOutcome:
    """Try ``channel`` once (``attempt`` is 1-based) and classify the result.

    429/5xx/network → ``retry`` with the backoff delay (Retry-After honoured) until the
    notification is ``give_up_after`` seconds old (``age`` is its age now; the last retry
    is made at that age) or, when given, ``max_attempts`` were made; then ``failed``.
    Other 4xx and bad config → ``failed`` at once.
    """
    if channel.notifier is None:
        return AttemptOutcome("not_configured", channel.skipped_reason)
    if message.kind != "test" and not channel.accepts(message.level):
        return AttemptOutcome("skipped", f"only takes {'/'.join(sorted(channel.spec.levels))}")
    try:
        report = channel.notifier.send(message)
    except NotifyRetryable as exc:
        tries = f"{attempt} attempt{'s' if attempt != 1 else ''}"
        if max_attempts is not None and attempt >= max_attempts:
            return AttemptOutcome("failed", f"{exc} (gave up after {tries})")
        if age >= give_up_after:
            return AttemptOutcome(
                "failed", f"{exc} (gave up after {tries} in {_minutes(age)})")
        delay = next_attempt_delay(attempt, exc.retry_after, rand=rand)
        return AttemptOutcome("retry", str(exc), retry_in=min(delay, give_up_after - age))
    except NotifyError as exc:
        return AttemptOutcome("failed", str(exc))
    except Exception as exc:  # a bug in one notifier must not stop the other channels
        log.error("%s: notifier crashed: %s", channel.name, type(exc).__name__)
        return AttemptOutcome("failed", f"{channel.name}: internal error ({type(exc).__name__})")
    return AttemptOutcome("delivered", report.detail, report=report)


@dataclass(frozen=True)
class ChannelResult:
    """The final outcome of sending one message through one channel."""

    channel: str
    outcome: AttemptOutcome
    attempts: int = 1

    @property
    def ok(self) -> bool:
        """False only when a configured channel failed."""
        return self.outcome.status != "failed"

    def line(self) -> str:
        """``slack: delivered``, ``pagerduty: not configured (X unset)``, ``email: failed: ...``."""
        status, reason = self.outcome.status, self.outcome.reason
        if status == "failed":
            return f"{self.channel}: failed: {_without_prefix(reason, self.channel)}"
        if status == "delivered" or not reason:
            return f"{self.channel}: {status}"
        return f"{self.channel}: {status.replace('_', ' ')} ({reason})"


def dispatch(
    channels: Iterable[Channel],
    message: Message,
    max_attempts: int = 3,
    max_wait: float = 30.0,
    sleep: Callable[[float], None] = time.sleep,
) -> list[ChannelResult]:
    """Send ``message`` through every channel in turn, retrying each a few times inline.

    For direct sends (``notify-test``); the outbox schedules retries instead of sleeping.
    A retry that would wait longer than ``max_wait`` seconds is given up as failed.
    """
    return [_send_one(channel, message, max_attempts, max_wait, sleep) for channel in channels]


def _send_one(channel: Channel, message: Message, max_attempts: int, max_wait: float,
              sleep: Callable[[float], None]) -> ChannelResult:
    attempt = 1
    while True:
        outcome = attempt_delivery(channel, message, attempt, max_attempts)
        if outcome.status != "retry":
            return ChannelResult(channel.name, outcome, attempt)
        wait = outcome.retry_in or 0.0
        if wait > max_wait:
            reason = f"{outcome.reason} (would have to wait {wait:.0f}s)"
            return ChannelResult(channel.name, AttemptOutcome("failed", reason), attempt)
        sleep(wait)
        attempt += 1


def _minutes(seconds: float) -> str:
    minutes = int(seconds // 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}" if minutes else f"{seconds:.0f}s"


def _without_prefix(reason: str, channel: str) -> str:
    # Errors already start with the channel type ("slack: HTTP 400"); the line names the
    # channel itself, so do not say it twice.
    prefix = f"{channel}: "
    return reason[len(prefix):] if reason.startswith(prefix) else reason

