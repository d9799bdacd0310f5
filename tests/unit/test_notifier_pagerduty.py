"""PagerDuty notifier against a local sink that validates Events v2 as PagerDuty does.

The sink's verdict (202 accepted / 400 invalid event) is what the tests assert, so a
body PagerDuty would refuse cannot pass here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from remediator.adapters.notifiers import HttpTransport, Message, PagerDutyNotifier
from remediator.errors import NotifyPermanent, NotifyRetryable
from tests.support import PagerDutySink, validate_event

ROUTING_KEY = "e93facc04764012d7bfb002500d5d1a6"  # the 32-character shape PagerDuty issues

TRIGGER = Message(kind="trigger", team="emergency", level="page",
                  title="[PAGE] ModelLoadFailure on app-prod", text="down for 10 minutes",
                  incident_id="inc-7", dedup_key="remediator/inc-7/emergency/page",
                  severity="critical", source="app-prod",
                  links={"execution": "http://127.0.0.1:9096/executions/7"})


@pytest.fixture
def sink() -> Iterator[PagerDutySink]:
    with PagerDutySink() as running:
        yield running


def notifier(sink: PagerDutySink, routing_key: str = ROUTING_KEY) -> PagerDutyNotifier:
    return PagerDutyNotifier("pagerduty", routing_key, HttpTransport(), events_url=sink.url)


def test_trigger_is_accepted_by_the_sink(sink: PagerDutySink) -> None:
    report = notifier(sink).send(TRIGGER)
    assert sink.verdicts == [202]
    assert report.detail == "dedup_key=remediator/inc-7/emergency/page"
    [event] = sink.events
    assert event["payload"]["summary"] == "[PAGE] ModelLoadFailure on app-prod"
    assert event["payload"]["source"] == "app-prod"
    assert event["payload"]["severity"] == "critical"


def test_resolve_closes_the_same_alert(sink: PagerDutySink) -> None:
    notifier(sink).send(TRIGGER)
    notifier(sink).send(Message(**{**TRIGGER.__dict__, "kind": "resolve"}))
    assert sink.verdicts == [202, 202]
    assert [(e["event_action"], e["dedup_key"]) for e in sink.events] == [
        ("trigger", "remediator/inc-7/emergency/page"),
        ("resolve", "remediator/inc-7/emergency/page"),
    ]


def test_wrong_routing_key_is_rejected_and_not_retried(sink: PagerDutySink) -> None:
    with pytest.raises(NotifyPermanent) as caught:
        notifier(sink, routing_key="too-short").send(TRIGGER)
    assert sink.verdicts == [400]
    assert "Length of 'routing_key' is incorrect" in str(caught.value)
    assert "too-short" not in str(caught.value)


def test_a_huge_message_still_fits_pagerduty_limits(sink: PagerDutySink) -> None:
    huge = Message(**{**TRIGGER.__dict__, "title": "t" * 4000, "text": "log line\n" * 200_000})
    notifier(sink).send(huge)
    assert sink.verdicts == [202]
    assert len(sink.requests[0].body) <= 512 * 1024


@pytest.mark.parametrize("severity", ["critical", "error", "warning", "info"])
def test_every_severity_is_valid_for_pagerduty(sink: PagerDutySink, severity: str) -> None:
    notifier(sink).send(Message(**{**TRIGGER.__dict__, "severity": severity}))
    assert sink.verdicts == [202]


def test_outage_then_recovery(sink: PagerDutySink) -> None:
    sink.set_responses([503, (429, {"Retry-After": "2"}, {"status": "throttle"})])
    with pytest.raises(NotifyRetryable):
        notifier(sink).send(TRIGGER)
    with pytest.raises(NotifyRetryable) as caught:
        notifier(sink).send(TRIGGER)
    assert caught.value.retry_after == 2.0
    notifier(sink).send(TRIGGER)
    assert sink.verdicts == [503, 429, 202]


# ------------------------------------------------- the sink itself, as PagerDuty


def event(**changes: object) -> bytes:
    base: dict[str, object] = {
        "routing_key": ROUTING_KEY, "event_action": "trigger", "dedup_key": "k",
        "payload": {"summary": "s", "source": "app-prod", "severity": "critical"},
    }
    base.update(changes)
    return json.dumps(base).encode()


@pytest.mark.parametrize(("body", "error"), [
    (b"not json", "not valid JSON"),
    (event(routing_key=""), "'routing_key' is missing or blank"),
    (event(routing_key="x" * 31), "Length of 'routing_key' is incorrect"),
    (event(event_action="explode"), "'event_action' is invalid"),
    (event(event_action="resolve", dedup_key=None), "'dedup_key' is required"),
    (event(payload={"source": "a", "severity": "critical"}), "'payload.summary' is missing"),
    (event(payload={"summary": "s" * 1025, "source": "a", "severity": "info"}),
     "longer than 1024"),
    (event(payload={"summary": "s", "severity": "info"}), "'payload.source' is missing"),
    (event(payload={"summary": "s", "source": "a", "severity": "fatal"}),
     "'payload.severity' is invalid"),
    (event(payload={"summary": "s", "source": "a", "severity": "info",
                    "custom_details": {"blob": "x" * 600_000}}), "too large"),
])
def test_sink_rejects_what_pagerduty_rejects(body: bytes, error: str) -> None:
    assert any(error in problem for problem in validate_event(body))


def test_sink_accepts_acknowledge_and_resolve_without_payload() -> None:
    assert validate_event(event(event_action="acknowledge", payload=None)) == []
    assert validate_event(event(event_action="resolve", payload=None)) == []
