"""The Alertmanager v4 payload: real fixtures parse, garbage never crashes, errors name paths."""

from __future__ import annotations

import contextlib
import json
import random
from datetime import UTC, datetime
from typing import Any

import pytest

from remediator.core.alerts import AlertStatus, label_fingerprint, parse_alert, parse_webhook
from remediator.errors import PayloadError
from tests.support.fixtures import alertmanager_payload

# Captured from a real Alertmanager 0.25; FIRING below is an inline copy of the first one.

FIRING = {
    "receiver": "remediator", "status": "firing",
    "alerts": [{
        "status": "firing",
        "labels": {"alertname": "ModelLoadFailure", "instance": "app-prod:8080",
                   "job": "app-prod", "service": "app-prod", "severity": "critical"},
        "annotations": {"summary": "Model failed to load"},
        "startsAt": "2026-11-29T11:27:02.749133669Z", "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "", "fingerprint": "0023b7e32bfe951f",
    }],
    "groupLabels": {"alertname": "ModelLoadFailure", "service": "app-prod"},
    "commonLabels": {"alertname": "ModelLoadFailure"}, "commonAnnotations": {},
    "externalURL": "http://vm:19094", "version": "4",
    "groupKey": "{}:{alertname=\"ModelLoadFailure\", service=\"app-prod\"}",
    "truncatedAlerts": 0,
}


def firing(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(json.dumps(FIRING))
    body.update(changes)
    return body


def alert_with(**changes: Any) -> dict[str, Any]:
    body = firing()
    body["alerts"][0].update(changes)
    return body


def test_captured_firing_alert_parses_with_its_identity() -> None:
    payload = parse_webhook(json.dumps(FIRING).encode())
    alert = payload.alerts[0]
    assert payload.status is AlertStatus.FIRING and payload.receiver == "remediator"
    assert alert.labels["service"] == "app-prod"
    assert alert.starts_at == datetime(2026, 11, 29, 11, 27, 2, 749133, tzinfo=UTC)
    assert alert.ends_at is None  # Alertmanager's 0001-01-01 means "still firing"
    assert alert.incident_key == "0023b7e32bfe951f@2026-11-29T11:27:02.749Z"


@pytest.mark.parametrize("name", ["firing-model-load-failure.json",
                                  "firing-model-memory-usage-grouped.json",
                                  "resolved-model-load-failure.json"])
def test_every_captured_fixture_parses_and_fingerprints_like_alertmanager(name: str) -> None:
    payload = parse_webhook(alertmanager_payload(name))
    for alert in payload.alerts:
        assert label_fingerprint(alert.labels) == alert.fingerprint


def test_firing_and_resolved_notifications_share_the_incident_key() -> None:
    resolved = alert_with(status="resolved", endsAt="2026-11-29T11:27:09.936692Z")
    resolved["status"] = "resolved"
    first, last = parse_webhook(FIRING).alerts[0], parse_webhook(resolved).alerts[0]
    assert last.status is AlertStatus.RESOLVED
    assert last.ends_at == datetime(2026, 11, 29, 11, 27, 9, 936692, tzinfo=UTC)
    assert first.incident_key == last.incident_key


def test_missing_fingerprint_is_derived_as_alertmanager_does() -> None:
    body = alert_with(fingerprint="")
    assert parse_webhook(body).alerts[0].fingerprint == "0023b7e32bfe951f"


def test_a_new_startsat_is_a_new_incident() -> None:
    first = parse_webhook(FIRING).alerts[0]
    later = parse_webhook(alert_with(startsAt="2026-11-29T12:00:00Z")).alerts[0]
    assert later.fingerprint == first.fingerprint
    assert later.incident_key != first.incident_key


def test_offsets_are_normalised_to_utc() -> None:
    shifted = parse_webhook(alert_with(startsAt="2026-11-29T13:27:02.749133669+02:00"))
    assert shifted.alerts[0].incident_key == parse_webhook(FIRING).alerts[0].incident_key


def test_lenient_about_fields_alertmanager_versions_add_or_lack() -> None:
    body = firing(notification_reason="new_alert", routeLabels={"x": "y"}, extra={"a": [1]})
    del body["truncatedAlerts"]  # before Alertmanager 0.21
    payload = parse_webhook(body)
    assert payload.truncated_alerts == 0
    assert payload.extra_fields == ["extra", "notification_reason", "routeLabels"]


def test_parse_alert_round_trips_through_to_dict() -> None:
    alert = parse_webhook(FIRING).alerts[0]
    assert parse_alert(json.loads(json.dumps(alert.to_dict()))) == alert


@pytest.mark.parametrize(("body", "message"), [
    (firing(version="3"), "version: expected \"4\""),
    ({k: v for k, v in FIRING.items() if k != "version"}, "version: required field is missing"),
    (firing(status="pending"), "status: expected \"firing\" or \"resolved\""),
    (firing(alerts={}), "alerts: expected a list"),
    (alert_with(labels={"service": 8080}), "alerts[0].labels.service: expected string"),
    (alert_with(annotations={"summary": None}), "alerts[0].annotations.summary: expected string"),
    (alert_with(labels=["x"]), "alerts[0].labels: expected an object of strings"),
    (alert_with(startsAt="yesterday"), "alerts[0].startsAt: expected an RFC 3339 timestamp"),
    (alert_with(startsAt="2026-11-29T11:27:02"), "alerts[0].startsAt: expected an RFC 3339"),
    (alert_with(startsAt="2026-13-45T11:27:02Z"), "alerts[0].startsAt: not a valid date/time"),
    (alert_with(startsAt="0001-01-01T00:00:00Z"), "alerts[0].startsAt: expected a real"),
    (alert_with(endsAt=17), "alerts[0].endsAt: expected an RFC 3339 timestamp"),
    (alert_with(fingerprint=12), "alerts[0].fingerprint: expected string"),
    (firing(truncatedAlerts=-1), "truncatedAlerts: expected a non-negative integer"),
    (firing(groupLabels={"a": 1}), "groupLabels.a: expected string"),
])
def test_invalid_payloads_are_refused_naming_the_json_path(body: Any, message: str) -> None:
    with pytest.raises(PayloadError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_webhook(body)


def test_missing_required_alert_fields_are_named() -> None:
    body = firing()
    del body["alerts"][0]["startsAt"]
    with pytest.raises(PayloadError, match=r"alerts\[0\]\.startsAt: required field is missing"):
        parse_webhook(body)


@pytest.mark.parametrize("body", [
    b"", b"\xff\xfe\x00", b"null", b"[]", b"42", b"\"4\"", b"{", b"[" * 100_000,
    b"{\"version\": \"4\", \"status\": \"firing\", \"alerts\": [" + b"1" * 5000 + b"]}",
    "{\"version\": \"4\", \"status\": \"firing\", \"alerts\": [null]}",
])
def test_garbage_is_a_payload_error_never_a_crash(body: bytes | str) -> None:
    with pytest.raises(PayloadError):
        parse_webhook(body)


def test_random_bytes_and_mutated_payloads_only_ever_raise_payload_error() -> None:
    rng = random.Random(6)
    good = json.dumps(FIRING).encode()
    for _ in range(3000):
        if rng.random() < 0.5:
            body = bytes(rng.randrange(256) for _ in range(rng.randrange(64)))
        else:
            mutated = bytearray(good)
            for _ in range(rng.randrange(1, 4)):
                mutated[rng.randrange(len(mutated))] = rng.randrange(256)
            body = bytes(mutated)
        with contextlib.suppress(PayloadError):
            parse_webhook(body)


def _without_fingerprint(**labels: str) -> dict[str, Any]:
    body = firing()
    body["alerts"][0].pop("fingerprint")
    body["alerts"][0]["labels"].update(labels)
    return body


@pytest.mark.parametrize(("body", "path"), [
    (_without_fingerprint(pod="\ud800"), "alerts[0].labels.pod: the value"),
    (_without_fingerprint(**{"p\udcffd": "x"}), "alerts[0].labels.p\\udcffd: the name"),
    (alert_with(annotations={"summary": "a\udc80b"}), "alerts[0].annotations.summary: "),
    (alert_with(fingerprint="\ud800"), "alerts[0].fingerprint: "),
    (firing(receiver="r\ud800"), "receiver: "),
    (firing(commonLabels={"x": "\ud800"}), "commonLabels.x: "),
])
def test_lone_surrogate_is_a_payload_error_naming_the_path(body: Any, path: str) -> None:
    raw = json.dumps(body).encode()  # valid UTF-8 JSON: the surrogate travels as an escape
    with pytest.raises(PayloadError) as caught:
        parse_webhook(raw)
    message = str(caught.value)
    assert message.startswith(path) and "not valid Unicode text" in message
    message.encode("utf-8")  # the reason itself can be stored with the dead letter
