"""The notification outbox: a row before every send, retries with backoff that survive a
restart, permanent failures recorded with their reason, channels that do not wait on
each other. Real HTTP sinks on 127.0.0.1; a settable clock instead of sleeping.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from remediator.adapters.notifiers import Message, MessageKind
from remediator.escalation import Dispatcher, Draft, Outbox
from remediator.metrics import ServiceMetrics
from remediator.store.sqlite import SqliteStore as Store
from tests.support import HttpSink, RecordedRequest
from tests.support.escalation_kit import policy_from_yaml
from tests.support.fakes import FakeClock
from tests.support.raw_db import rows

POLICY = """
version: 1
channels:
  slack: {type: slack, webhook_url: {env: SLACK_WEBHOOK_URL}}
  teams: {type: teams, webhook_url: {env: TEAMS_WEBHOOK_URL}}
  pagerduty:
    type: pagerduty
    routing_key: {env: PAGERDUTY_ROUTING_KEY}
    events_url: {env: PAGERDUTY_EVENTS_URL}
    levels: [page]
teams:
  emergency: {channels: [pagerduty, slack, teams]}
rules: []
"""
KEY = "remediator/1/emergency/notify"


def message(kind: MessageKind = "trigger", key: str = KEY) -> Message:
    return Message(kind=kind, team="emergency", level="notify",
                   title="ModelLoadFailure on app-prod", text="app-prod is down",
                   incident_id="1", dedup_key=key, severity="error", source="app-prod")


def draft(channels: tuple[str, ...] = ("slack",), key: str = KEY) -> Draft:
    types = {"slack": "slack", "teams": "teams", "pagerduty": "pagerduty"}
    return Draft(None, "trigger", key, "emergency", "notify", "error", "test-rule",
                 "app-prod is down", message(key=key), [(c, types[c]) for c in channels])


class Rig:
    """A store file, its outbox and a dispatcher, as one process would have them."""

    def __init__(self, path: Path, env: Mapping[str, str], clock: FakeClock) -> None:
        self.store = Store(path)
        self.outbox = Outbox(self.store)
        self.registry = CollectorRegistry()
        self.dispatcher = Dispatcher(self.outbox, policy_from_yaml(POLICY),
                                     ServiceMetrics(self.registry), env=env, clock=clock,
                                     rand=lambda: 0.0)

    def delivery(self, channel: str = "slack") -> dict[str, object]:
        return rows(self.store, "SELECT * FROM deliveries WHERE channel = ?", (channel,))[0]

    def notification(self) -> dict[str, object]:
        return rows(self.store, "SELECT * FROM notifications")[0]

    def sent(self, channel: str, outcome: str) -> float:
        return self.registry.get_sample_value(
            "remediator_notifications_total", {"channel": channel, "outcome": outcome}) or 0.0

    def close(self) -> None:
        self.dispatcher.stop(timeout=5)
        self.store.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def slack() -> Iterator[HttpSink]:
    with HttpSink(path="/services/T0/B0/secret") as sink:
        yield sink


@pytest.fixture
def rig(tmp_path: Path, slack: HttpSink, clock: FakeClock) -> Iterator[Rig]:
    made = Rig(tmp_path / "r.db", {"SLACK_WEBHOOK_URL": slack.url}, clock)
    yield made
    made.close()


def test_every_notification_is_a_row_before_it_is_sent(tmp_path: Path, clock: FakeClock
                                                        ) -> None:
    seen_by_sink: list[tuple[str, str]] = []

    class Witness(HttpSink):
        def respond(self, request: RecordedRequest) -> tuple[int, Mapping[str, str], bytes]:
            with sqlite3.connect(tmp_path / "r.db") as db:  # another reader, mid-send
                seen_by_sink.extend(db.execute(
                    "SELECT n.dedup_key, d.status FROM notifications n "
                    "JOIN deliveries d ON d.notification_id = n.id").fetchall())
            return super().respond(request)

    with Witness() as sink:
        rig = Rig(tmp_path / "r.db", {"SLACK_WEBHOOK_URL": sink.url}, clock)
        rig.outbox.enqueue(draft(), clock())
        assert sink.requests == []  # accepted is not sent
        assert rig.delivery()["status"] == "pending"
        rig.dispatcher.deliver_due()
        rig.close()
    assert seen_by_sink == [(KEY, "sending")]


def test_503_503_202_is_retried_with_backoff_and_delivered_exactly_once(
        rig: Rig, slack: HttpSink, clock: FakeClock) -> None:
    slack.set_responses([503, 503, 202])
    rig.outbox.enqueue(draft(), clock())
    rig.dispatcher.deliver_due()
    first_retry = rig.delivery()
    assert (first_retry["status"], first_retry["attempts"]) == ("retry", 1)
    assert "503" in str(first_retry["last_error"])
    clock.advance(seconds=0.9)  # backoff for the first retry: 1 s (rand=0: the low end)
    rig.dispatcher.deliver_due()
    assert len(slack.requests) == 1
    clock.advance(seconds=0.1)
    rig.dispatcher.deliver_due()
    clock.advance(seconds=1.9)  # the second retry waits twice as long
    rig.dispatcher.deliver_due()
    assert len(slack.requests) == 2
    clock.advance(seconds=0.1)
    rig.dispatcher.deliver_due()
    clock.advance(hours=1)
    rig.dispatcher.deliver_due()
    assert len(slack.requests) == 3
    done = rig.delivery()
    assert (done["status"], done["attempts"]) == ("delivered", 3)
    assert rig.notification()["status"] == "delivered"
    assert (rig.sent("slack", "retry"), rig.sent("slack", "delivered")) == (2.0, 1.0)


def outage(rig: Rig, clock: FakeClock, minutes: int) -> None:
    """Let the dispatcher run for ``minutes`` of clock time, in 30-second ticks."""
    for _ in range(minutes * 2):
        clock.advance(seconds=30)
        rig.dispatcher.deliver_due()


def test_a_notification_survives_a_40_minute_outage_and_is_delivered_when_it_ends(
        rig: Rig, slack: HttpSink, clock: FakeClock) -> None:
    slack.default_status = 503  # the endpoint is down for 40 minutes
    rig.outbox.enqueue(draft(), clock())
    rig.dispatcher.deliver_due()
    outage(rig, clock, minutes=40)
    waiting = rig.delivery()
    assert waiting["status"] == "retry" and "503" in str(waiting["last_error"])
    assert rig.notification()["status"] == "pending"
    slack.default_status = 202  # it is back: the next retry is at most 5 minutes away
    outage(rig, clock, minutes=5)
    assert rig.delivery()["status"] == "delivered"
    assert rig.notification()["status"] == "delivered"


def test_a_resolve_gets_its_own_retry_time_after_its_trigger_went_through(
        rig: Rig, slack: HttpSink, clock: FakeClock) -> None:
    # Down for 55 minutes; the incident resolves at minute 1. The resolve waits for its
    # trigger, and that wait must not eat its retries: after the trigger is delivered, the
    # endpoint fails again for 20 minutes, and the resolve must still get through.
    slack.default_status = 503
    trigger = rig.outbox.enqueue(draft(), clock())
    rig.dispatcher.deliver_due()
    clock.advance(seconds=60)
    rig.outbox.enqueue(replace(draft(), kind="resolve", message=message(kind="resolve"),
                               trigger_id=trigger), clock())
    outage(rig, clock, minutes=54)
    slack.set_responses([202])  # the next request (the trigger's retry) gets through
    while rows(rig.store, "SELECT status FROM deliveries WHERE notification_id = ?",
                          (trigger,))[0]["status"] != "delivered":
        outage(rig, clock, minutes=1)
    outage(rig, clock, minutes=20)  # and the endpoint fails again for 20 minutes
    slack.default_status = 202
    outage(rig, clock, minutes=6)
    statuses = rows(rig.store, "SELECT n.kind, d.status FROM deliveries d JOIN notifications n "
                               "ON n.id = d.notification_id ORDER BY n.id")
    assert [(r["kind"], r["status"]) for r in statuses] == [("trigger", "delivered"),
                                                              ("resolve", "delivered")]


def test_a_notification_still_failing_after_an_hour_fails_with_the_reason(
        rig: Rig, slack: HttpSink, clock: FakeClock) -> None:
    slack.default_status = 503
    rig.outbox.enqueue(draft(), clock())
    rig.dispatcher.deliver_due()
    outage(rig, clock, minutes=59)
    assert rig.delivery()["status"] == "retry"
    outage(rig, clock, minutes=1)  # the last retry is made at the give-up age exactly
    failed = rig.delivery()
    assert failed["status"] == "failed"
    assert str(failed["last_error"]).endswith(
        f"(gave up after {failed['attempts']} attempts in 60 minutes)")
    tried = len(slack.requests)
    outage(rig, clock, minutes=30)
    assert len(slack.requests) == tried  # failed is final
    assert rig.notification()["status"] == "failed"


def test_400_fails_at_once_with_the_reason_and_is_not_retried(
        rig: Rig, slack: HttpSink, clock: FakeClock) -> None:
    slack.set_responses([(400, {}, "invalid_payload")])
    rig.outbox.enqueue(draft(), clock())
    rig.dispatcher.deliver_due()
    clock.advance(hours=2)
    rig.dispatcher.deliver_due()
    assert len(slack.requests) == 1
    failed = rig.delivery()
    assert failed["status"] == "failed" and failed["attempts"] == 1
    assert "400" in str(failed["last_error"]) and "invalid_payload" in str(failed["last_error"])
    notification = rig.notification()
    assert notification["status"] == "failed"
    assert "slack: failed" in str(notification["status_reason"])
    assert rig.sent("slack", "failed") == 1.0


def test_one_notification_per_dedup_key(rig: Rig, clock: FakeClock) -> None:
    assert rig.outbox.enqueue(draft(), clock()) is not None
    for _ in range(3):
        assert rig.outbox.enqueue(draft(), clock()) is None
    assert len(rows(rig.store, "SELECT * FROM notifications")) == 1
    assert len(rows(rig.store, "SELECT * FROM deliveries")) == 1


def test_a_channel_without_settings_is_recorded_as_such_never_dropped(
        rig: Rig, clock: FakeClock) -> None:
    rig.outbox.enqueue(draft(("slack", "teams")), clock())
    rig.dispatcher.deliver_due()
    teams = rig.delivery("teams")
    assert teams["status"] == "not_configured"
    assert teams["last_error"] == "TEAMS_WEBHOOK_URL unset"
    assert rig.notification()["status"] == "delivered"  # slack got it


def test_nobody_reachable_is_a_failed_notification_with_the_reason(
        tmp_path: Path, clock: FakeClock) -> None:
    rig = Rig(tmp_path / "r.db", {}, clock)
    rig.outbox.enqueue(draft(("slack", "teams")), clock())
    rig.dispatcher.deliver_due()
    assert rig.notification()["status"] == "failed"
    assert "SLACK_WEBHOOK_URL unset" in str(rig.notification()["status_reason"])
    rig.close()


def test_a_channel_that_is_down_does_not_hold_the_others(tmp_path: Path, clock: FakeClock
                                                         ) -> None:
    with HttpSink() as hung, HttpSink() as teams:
        hung.delay = 1.5  # Slack hangs on every request
        rig = Rig(tmp_path / "r.db", {"SLACK_WEBHOOK_URL": hung.url,
                                      "TEAMS_WEBHOOK_URL": teams.url}, clock)
        rig.dispatcher.start()
        rig.outbox.enqueue(draft(("slack", "teams")), clock())
        rig.dispatcher.wake()
        deadline = time.monotonic() + 1.0
        while rig.delivery("teams")["status"] != "delivered" and time.monotonic() < deadline:
            time.sleep(0.02)
        assert rig.delivery("teams")["status"] == "delivered"
        assert rig.delivery("slack")["status"] == "sending"  # still waiting on Slack
        rig.close()  # lets the hung attempt finish and record itself
    again = Store(tmp_path / "r.db")
    assert rows(again, "SELECT status FROM deliveries WHERE channel = 'slack'") == [
        {"status": "delivered"}]
    again.close()


def test_restart_with_a_retry_pending_delivers_it_exactly_once(
        tmp_path: Path, slack: HttpSink, clock: FakeClock) -> None:
    slack.set_responses([503])
    first = Rig(tmp_path / "r.db", {"SLACK_WEBHOOK_URL": slack.url}, clock)
    first.outbox.enqueue(draft(), clock())
    first.dispatcher.deliver_due()
    first.close()  # the process stops while the notification waits for its retry

    clock.advance(seconds=5)
    second = Rig(tmp_path / "r.db", {"SLACK_WEBHOOK_URL": slack.url}, clock)
    second.dispatcher.start()
    deadline = time.monotonic() + 3
    while second.delivery()["status"] != "delivered" and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.2)  # room for a duplicate, were there one
    second.close()
    assert len(slack.requests) == 2  # the 503, then exactly one delivery
    assert slack.requests[0].body == slack.requests[1].body


def test_stopping_mid_send_finishes_the_send_and_the_restart_does_not_repeat_it(
        tmp_path: Path, slack: HttpSink, clock: FakeClock) -> None:
    slack.delay = 0.5
    first = Rig(tmp_path / "r.db", {"SLACK_WEBHOOK_URL": slack.url}, clock)
    first.dispatcher.start()
    first.outbox.enqueue(draft(), clock())
    first.dispatcher.wake()
    deadline = time.monotonic() + 2
    while not slack.requests and time.monotonic() < deadline:
        time.sleep(0.01)
    first.close()  # while the request is in flight
    second = Rig(tmp_path / "r.db", {"SLACK_WEBHOOK_URL": slack.url}, clock)
    second.dispatcher.start()
    time.sleep(0.3)
    assert second.delivery()["status"] == "delivered"
    second.close()
    assert len(slack.requests) == 1


def test_a_send_cut_off_by_a_crash_is_sent_again_after_the_restart(
        tmp_path: Path, slack: HttpSink, clock: FakeClock) -> None:
    first = Rig(tmp_path / "r.db", {"SLACK_WEBHOOK_URL": slack.url}, clock)
    first.outbox.enqueue(draft(), clock())
    assert len(first.outbox.claim_due(clock())) == 1  # marked sending; then the crash
    first.store.close()
    second = Rig(tmp_path / "r.db", {"SLACK_WEBHOOK_URL": slack.url}, clock)
    assert second.outbox.recover_interrupted(clock()) == 1
    second.dispatcher.deliver_due()
    assert second.delivery()["status"] == "delivered"
    assert "interrupted" in str(second.delivery()["last_error"])
    second.close()
    assert len(slack.requests) == 1


def test_a_channel_gone_from_the_policy_after_a_restart_fails_with_the_reason(
        rig: Rig, clock: FakeClock) -> None:
    rig.outbox.enqueue(draft(("slack",)), clock())
    rig.dispatcher.policy = policy_from_yaml(POLICY.replace(
        "emergency: {channels: [pagerduty, slack, teams]}", "emergency: {channels: [teams]}"))
    rig.dispatcher.deliver_due()
    assert rig.delivery()["status"] == "failed"
    assert "channel slack is no longer in team emergency" in str(rig.delivery()["last_error"])


def test_a_store_that_sent_notifications_before_instance_ids_keeps_its_keys(
        rig: Rig, clock: FakeClock) -> None:
    # An upgrade must not re-page: incidents already notified keep remediator/<n>/... keys.
    rig.outbox.enqueue(draft(), clock())
    assert rig.store.instance_id == ""
    assert Store(rig.store.path).instance_id == ""  # and stays so


def test_a_new_store_gets_its_own_instance_id(tmp_path: Path) -> None:
    first, second = Store(tmp_path / "a.db"), Store(tmp_path / "b.db")
    assert len(first.instance_id) == 8 and first.instance_id != second.instance_id
