"""Delivery semantics: retries with backoff, what is retried, isolation, no leaked secrets.

Uses real HTTP sinks on 127.0.0.1 so connection errors, timeouts and urllib3's own
logging are the real thing.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator

import pytest

from remediator.adapters.notifiers import (
    SLACK_FORMAT,
    TEAMS_FORMAT,
    WEBHOOK_FORMAT,
    AttemptOutcome,
    Channel,
    DeliveryReport,
    HttpTransport,
    JsonFormat,
    JsonWebhookNotifier,
    Message,
    PagerDutyNotifier,
    attempt_delivery,
    dispatch,
)
from remediator.core.backoff import next_attempt_delay
from remediator.core.defaults import NOTIFY_GIVE_UP_S as DEFAULT_GIVE_UP_SECONDS
from remediator.core.defaults import NOTIFY_RETRY_CAP_S as DEFAULT_CAP_SECONDS
from remediator.core.escalation_channels import ChannelSpec
from remediator.errors import NotifyPermanent, NotifyRetryable
from tests.support import HttpSink, PagerDutySink

ROUTING_KEY = "Rk9sZWN0aW9uU2VjcmV0S2V5MDAwMDA"  # 32 characters
ROUTING_KEY = ROUTING_KEY + "x" * (32 - len(ROUTING_KEY))
SLACK_PATH = "/services/T0SECRET/B0SECRET/XXXXSECRETXXXX"

MESSAGE = Message(kind="trigger", team="emergency", level="page", title="Down 10m",
                  text="app-prod down", incident_id="inc-1",
                  dedup_key="remediator/inc-1/emergency/page", severity="critical",
                  source="app-prod")


def channel(notifier: object, name: str = "slack", levels: frozenset[str] | None = None
            ) -> Channel:
    spec = ChannelSpec(name, name, {}, levels or frozenset({"page", "notify"}))
    return Channel(name, name, spec, notifier)  # type: ignore[arg-type]


class Scripted:
    """A notifier that answers from a script: None delivers, an exception is raised."""

    def __init__(self, *script: Exception | None, name: str = "fake") -> None:
        self.name = name
        self.script = list(script)
        self.sent: list[Message] = []

    def send(self, message: Message) -> DeliveryReport:
        self.sent.append(message)
        step = self.script.pop(0) if self.script else None
        if step is not None:
            raise step
        return DeliveryReport(self.name, 200, "ok")


@pytest.fixture
def sink() -> Iterator[HttpSink]:
    with HttpSink(path=SLACK_PATH) as running:
        yield running


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# ---------------------------------------------------------------------- backoff


def test_backoff_grows_exponentially_with_bounded_jitter() -> None:
    assert next_attempt_delay(1, rand=lambda: 0.0) == 1.0
    assert next_attempt_delay(1, rand=lambda: 0.999) < 2.0
    assert next_attempt_delay(4, rand=lambda: 0.0) == 8.0
    assert [next_attempt_delay(n, rand=lambda: 1.0) for n in (1, 2, 3)] == [2.0, 4.0, 8.0]


def test_backoff_is_capped() -> None:
    assert next_attempt_delay(30, rand=lambda: 1.0) == 300.0
    assert next_attempt_delay(1000, rand=lambda: 0.0) == 150.0


def test_backoff_honours_retry_after_but_clamps_it() -> None:
    assert next_attempt_delay(1, retry_after=30, rand=lambda: 0.0) == 30.0
    assert next_attempt_delay(8, retry_after=1, rand=lambda: 0.0) == 128.0  # ours is longer
    assert next_attempt_delay(1, retry_after=86_400, rand=lambda: 0.0) == 3600.0


def test_backoff_rejects_attempt_zero() -> None:
    with pytest.raises(ValueError, match="attempt"):
        next_attempt_delay(0)


# ------------------------------------------------------------- attempt_delivery


def test_delivered() -> None:
    outcome = attempt_delivery(channel(Scripted()), MESSAGE)
    assert (outcome.status, outcome.report) == ("delivered", DeliveryReport("fake", 200, "ok"))


def test_retryable_failure_is_rescheduled_with_retry_after() -> None:
    notifier = Scripted(NotifyRetryable("slack: HTTP 429", retry_after=42))
    outcome = attempt_delivery(channel(notifier), MESSAGE, attempt=1, rand=lambda: 0.0)
    assert outcome == AttemptOutcome("retry", "slack: HTTP 429", retry_in=42.0)


def test_retryable_failure_is_retried_by_time_not_by_count() -> None:
    notifier = Scripted(NotifyRetryable("slack: HTTP 503"))
    outcome = attempt_delivery(channel(notifier), MESSAGE, attempt=40, rand=lambda: 1.0,
                               age=40 * 60.0)
    assert (outcome.status, outcome.retry_in) == ("retry", DEFAULT_CAP_SECONDS)


def test_retryable_failure_gives_up_at_the_give_up_age() -> None:
    notifier = Scripted(NotifyRetryable("slack: HTTP 503"))
    outcome = attempt_delivery(channel(notifier), MESSAGE, attempt=20,
                               age=DEFAULT_GIVE_UP_SECONDS)
    assert outcome == AttemptOutcome(
        "failed", "slack: HTTP 503 (gave up after 20 attempts in 60 minutes)")


def test_the_last_retry_is_made_at_the_give_up_age_not_after() -> None:
    notifier = Scripted(NotifyRetryable("slack: HTTP 503"))
    outcome = attempt_delivery(channel(notifier), MESSAGE, attempt=20, rand=lambda: 0.0,
                               age=DEFAULT_GIVE_UP_SECONDS - 100, give_up_after=3600)
    assert (outcome.status, outcome.retry_in) == ("retry", 100.0)


def test_retryable_failure_gives_up_after_max_attempts_when_sending_inline() -> None:
    notifier = Scripted(NotifyRetryable("slack: HTTP 503"))
    outcome = attempt_delivery(channel(notifier), MESSAGE, attempt=3, max_attempts=3)
    assert outcome == AttemptOutcome("failed", "slack: HTTP 503 (gave up after 3 attempts)")


def test_permanent_failure_fails_at_once_with_the_reason() -> None:
    outcome = attempt_delivery(channel(Scripted(NotifyPermanent("slack: HTTP 404: gone"))),
                               MESSAGE)
    assert outcome == AttemptOutcome("failed", "slack: HTTP 404: gone")


def test_unconfigured_channel_is_skipped_not_failed() -> None:
    spec = ChannelSpec("pagerduty", "pagerduty", {})
    unset = Channel("pagerduty", "pagerduty", spec, None, "PAGERDUTY_ROUTING_KEY unset")
    assert attempt_delivery(unset, MESSAGE) == AttemptOutcome(
        "not_configured", "PAGERDUTY_ROUTING_KEY unset")


def test_channel_that_only_takes_pages_skips_notices() -> None:
    notifier = Scripted()
    notice = Message(**{**MESSAGE.__dict__, "level": "notify"})
    outcome = attempt_delivery(channel(notifier, levels=frozenset({"page"})), notice)
    assert outcome.status == "skipped"
    assert notifier.sent == []


def test_crashing_notifier_is_a_failure_not_an_exception() -> None:
    outcome = attempt_delivery(channel(Scripted(KeyError("boom"))), MESSAGE)
    assert outcome == AttemptOutcome("failed", "slack: internal error (KeyError)")


# ------------------------------------------------------- against a real endpoint


def test_5xx_then_success_is_delivered_on_the_third_attempt(sink: HttpSink) -> None:
    sink.set_responses([503, 503, 200])
    slack = channel(JsonWebhookNotifier("slack", sink.url, HttpTransport(), SLACK_FORMAT))
    outcomes, attempt = [], 1
    while True:
        outcome = attempt_delivery(slack, MESSAGE, attempt, rand=lambda: 0.0)
        outcomes.append(outcome)
        if outcome.status != "retry":
            break
        attempt += 1
    assert [o.status for o in outcomes] == ["retry", "retry", "delivered"]
    assert [o.retry_in for o in outcomes[:2]] == [1.0, 2.0]
    assert len(sink.requests) == 3


def test_429_retry_after_from_a_real_endpoint(sink: HttpSink) -> None:
    sink.set_responses([(429, {"Retry-After": "12"}, "rate_limited")])
    slack = channel(JsonWebhookNotifier("slack", sink.url, HttpTransport(), SLACK_FORMAT))
    outcome = attempt_delivery(slack, MESSAGE, rand=lambda: 0.0)
    assert (outcome.status, outcome.retry_in) == ("retry", 12.0)


def test_400_is_not_retried(sink: HttpSink) -> None:
    sink.set_responses([(400, {}, "invalid_payload")])
    slack = channel(JsonWebhookNotifier("slack", sink.url, HttpTransport(), SLACK_FORMAT))
    slept: list[float] = []
    [result] = dispatch([slack], MESSAGE, sleep=slept.append)
    assert result.outcome == AttemptOutcome("failed", "slack: HTTP 400: invalid_payload")
    assert (len(sink.requests), slept) == (1, [])


def test_dispatch_retries_inline_and_honours_retry_after(sink: HttpSink) -> None:
    sink.set_responses([(429, {"Retry-After": "3"}, "rate_limited"), 200])
    slept: list[float] = []
    slack = channel(JsonWebhookNotifier("slack", sink.url, HttpTransport(), SLACK_FORMAT))
    [result] = dispatch([slack], MESSAGE, sleep=slept.append)
    assert (result.outcome.status, result.attempts, slept) == ("delivered", 2, [3.0])


def test_dispatch_gives_up_when_told_to_wait_too_long(sink: HttpSink) -> None:
    sink.set_responses([(429, {"Retry-After": "600"}, "")])
    slack = channel(JsonWebhookNotifier("slack", sink.url, HttpTransport(), SLACK_FORMAT))
    [result] = dispatch([slack], MESSAGE, sleep=lambda s: None)
    assert result.line() == "slack: failed: HTTP 429 (would have to wait 600s)"


def test_a_channel_that_is_down_does_not_block_the_others(sink: HttpSink) -> None:
    transport = HttpTransport(timeout=(0.5, 0.5))
    with HttpSink() as hung, PagerDutySink() as pagerduty:
        hung.delay = 2.0  # answers long after the read timeout
        channels = [
            channel(JsonWebhookNotifier("refused", f"http://127.0.0.1:{closed_port()}/x",
                                        transport, SLACK_FORMAT), "refused"),
            channel(JsonWebhookNotifier("hung", hung.url, transport, WEBHOOK_FORMAT), "hung"),
            channel(PagerDutyNotifier("pagerduty", ROUTING_KEY, transport, pagerduty.url),
                    "pagerduty"),
            channel(JsonWebhookNotifier("slack", sink.url, transport, SLACK_FORMAT), "slack"),
        ]
        results = dispatch(channels, MESSAGE, max_attempts=1)
        assert [r.line() for r in results] == [
            "refused: failed: network error (ConnectionError) (gave up after 1 attempt)",
            "hung: failed: network error (ReadTimeout) (gave up after 1 attempt)",
            "pagerduty: delivered",
            "slack: delivered",
        ]
        assert pagerduty.verdicts == [202]


def test_secrets_never_appear_in_logs_or_errors(
    sink: HttpSink, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    transport = HttpTransport(timeout=(0.5, 0.5))
    refused_url = f"http://127.0.0.1:{closed_port()}{SLACK_PATH}"
    with PagerDutySink() as pagerduty:
        pagerduty.set_responses([503])
        sink.set_responses([(429, {"Retry-After": "1"}, "rate_limited"), 200])
        channels = [
            channel(JsonWebhookNotifier("slack", sink.url, transport, SLACK_FORMAT)),
            channel(JsonWebhookNotifier("slack-down", refused_url, transport, SLACK_FORMAT),
                    "slack-down"),
            channel(PagerDutyNotifier("pagerduty", ROUTING_KEY, transport, pagerduty.url),
                    "pagerduty"),
        ]
        results = dispatch(channels, MESSAGE, sleep=lambda s: None)
    assert [r.outcome.status for r in results] == ["delivered", "failed", "delivered"]
    assert "POST" in caplog.text  # urllib3 did log its request lines...
    text = caplog.text + "\n".join(r.line() for r in results)
    for secret in ("T0SECRET", "XXXXSECRETXXXX", ROUTING_KEY):
        assert secret not in text  # ...with the secret parts hidden


@pytest.mark.parametrize("fmt", [SLACK_FORMAT, TEAMS_FORMAT, WEBHOOK_FORMAT])
def test_an_endpoint_that_echoes_the_secret_path_does_not_leak_it(
    sink: HttpSink, fmt: JsonFormat
) -> None:
    # An Express/nginx-style endpoint answers an unknown route with the path it was sent:
    # the path of a webhook URL is the secret, so the error (stored, shown by GET
    # /api/v1/notifications, logged) must not carry it.
    sink.set_responses([(404, {"Content-Type": "text/html"},
                         f"<pre>Cannot POST {SLACK_PATH}</pre>")])
    hook = channel(JsonWebhookNotifier("hook", f"{sink.url}?sig=S3CR3TSIGNATURE0",
                                       HttpTransport(), fmt),
                   "hook")
    outcome = attempt_delivery(hook, MESSAGE)
    assert outcome.status == "failed"
    assert outcome.reason == "hook: HTTP 404: <pre>Cannot POST ***</pre>"
