"""The HTTP channels against `responses`: exact request bodies and status handling.

429 and 5xx are worth retrying (NotifyRetryable, Retry-After kept); any other 4xx is not
(NotifyPermanent, reason recorded, one request only).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
import responses

from remediator.adapters.notifiers import (
    SLACK_FORMAT,
    TEAMS_FORMAT,
    WEBHOOK_FORMAT,
    HttpTransport,
    JsonWebhookNotifier,
    Message,
    PagerDutyNotifier,
)
from remediator.errors import NotifyPermanent, NotifyRetryable

SLACK_URL = "https://hooks.slack.com/services/T0000/B0000/XXXXXXXXXXXXXXXX"
TEAMS_URL = "https://prod-01.westeurope.logic.azure.com/workflows/abc/triggers/manual/paths/invoke?sig=SIG"
HOOK_URL = "https://tickets.example.com/hooks/remediator?token=abc"
PD_URL = "https://events.pagerduty.com/v2/enqueue"
ROUTING_KEY = "R0123456789abcdef0123456789abcde"

MESSAGE = Message(
    kind="trigger", team="emergency", level="page",
    title="[PAGE] ModelLoadFailure on app-prod: Model failed to load",
    text="Paging emergency (critical).\nWhy: down for 10m\n",
    incident_id="inc-1", dedup_key="remediator/inc-1/emergency/page", severity="critical",
    links={"execution": "http://127.0.0.1:9096/executions/5"},
    fields={"Target": "app-prod", "Alert": "ModelLoadFailure"}, source="app-prod",
)


def body(call_index: int = 0) -> Any:
    return json.loads(responses.calls[call_index].request.body or b"")


@pytest.fixture
def transport() -> HttpTransport:
    return HttpTransport()


# -------------------------------------------------------------------- PagerDuty


@responses.activate
def test_pagerduty_trigger_body(transport: HttpTransport) -> None:
    responses.post(PD_URL, status=202, json={"status": "success", "dedup_key": MESSAGE.dedup_key})
    report = PagerDutyNotifier("pagerduty", ROUTING_KEY, transport).send(MESSAGE)
    assert body() == {
        "routing_key": ROUTING_KEY,
        "event_action": "trigger",
        "dedup_key": "remediator/inc-1/emergency/page",
        "payload": {
            "summary": "[PAGE] ModelLoadFailure on app-prod: Model failed to load",
            "source": "app-prod",
            "severity": "critical",
            "group": "emergency",
            "custom_details": {
                "incident_id": "inc-1", "team": "emergency", "level": "page",
                "text": "Paging emergency (critical).\nWhy: down for 10m\n",
                "Target": "app-prod", "Alert": "ModelLoadFailure",
            },
        },
        "client": "Remediator",
        "links": [{"href": "http://127.0.0.1:9096/executions/5", "text": "execution"}],
    }
    assert report.status_code == 202
    assert report.detail == "dedup_key=remediator/inc-1/emergency/page"


@responses.activate
def test_pagerduty_resolve_uses_the_same_dedup_key(transport: HttpTransport) -> None:
    responses.post(PD_URL, status=202, json={"status": "success"})
    resolve = Message(**{**MESSAGE.__dict__, "kind": "resolve"})
    PagerDutyNotifier("pagerduty", ROUTING_KEY, transport).send(resolve)
    assert body() == {"routing_key": ROUTING_KEY, "event_action": "resolve",
                      "dedup_key": "remediator/inc-1/emergency/page"}


@pytest.mark.parametrize(("severity", "sent"), [
    ("critical", "critical"), ("error", "error"), ("warning", "warning"), ("info", "info"),
    ("bogus", "error"),
])
@responses.activate
def test_pagerduty_severity_mapping(transport: HttpTransport, severity: str, sent: str) -> None:
    responses.post(PD_URL, status=202, json={"status": "success"})
    PagerDutyNotifier("pagerduty", ROUTING_KEY, transport).send(
        Message(**{**MESSAGE.__dict__, "severity": severity}))
    assert body()["payload"]["severity"] == sent


@responses.activate
def test_pagerduty_summary_is_cut_to_1024_characters(transport: HttpTransport) -> None:
    responses.post(PD_URL, status=202, json={"status": "success"})
    PagerDutyNotifier("pagerduty", ROUTING_KEY, transport).send(
        Message(**{**MESSAGE.__dict__, "title": "x" * 5000}))
    assert len(body()["payload"]["summary"]) == 1024


@responses.activate
def test_pagerduty_test_message_triggers_then_resolves(transport: HttpTransport) -> None:
    responses.post(PD_URL, status=202, json={"status": "success"})
    PagerDutyNotifier("pagerduty", ROUTING_KEY, transport).send(
        Message(**{**MESSAGE.__dict__, "kind": "test"}))
    assert [body(i)["event_action"] for i in range(2)] == ["trigger", "resolve"]
    assert body(0)["payload"]["severity"] == "info"


@responses.activate
def test_pagerduty_429_is_retryable_with_retry_after(transport: HttpTransport) -> None:
    responses.post(PD_URL, status=429, headers={"Retry-After": "7"}, json={"status": "throttle"})
    with pytest.raises(NotifyRetryable) as caught:
        PagerDutyNotifier("pagerduty", ROUTING_KEY, transport).send(MESSAGE)
    assert caught.value.retry_after == 7.0


@responses.activate
def test_pagerduty_400_is_permanent_with_the_reason(transport: HttpTransport) -> None:
    responses.post(PD_URL, status=400, json={"status": "invalid event",
                                             "errors": ["'payload.summary' is missing"]})
    with pytest.raises(NotifyPermanent, match=r"HTTP 400.*payload.summary"):
        PagerDutyNotifier("pagerduty", ROUTING_KEY, transport).send(MESSAGE)
    assert len(responses.calls) == 1


# ------------------------------------------------------------------------- Slack


@responses.activate
def test_slack_body_has_text_and_blocks(transport: HttpTransport) -> None:
    responses.post(SLACK_URL, status=200, body="ok")
    JsonWebhookNotifier("slack", SLACK_URL, transport, SLACK_FORMAT).send(MESSAGE)
    assert body() == {
        "text": ":rotating_light: [PAGE] ModelLoadFailure on app-prod: Model failed to load",
        "blocks": [
            {"type": "header", "text": {"type": "plain_text",
                                        "text": "[PAGE] ModelLoadFailure on app-prod: Model "
                                                "failed to load"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": MESSAGE.text}},
            {"type": "section", "fields": [
                {"type": "mrkdwn", "text": "*Target*\napp-prod"},
                {"type": "mrkdwn", "text": "*Alert*\nModelLoadFailure"},
            ]},
            {"type": "context", "elements": [{
                "type": "mrkdwn", "text": "<http://127.0.0.1:9096/executions/5|execution>"}]},
        ],
    }


@responses.activate
def test_slack_escapes_control_characters_from_labels(transport: HttpTransport) -> None:
    responses.post(SLACK_URL, status=200, body="ok")
    hostile = Message(**{**MESSAGE.__dict__, "text": "service <!channel> & <@U123>"})
    JsonWebhookNotifier("slack", SLACK_URL, transport, SLACK_FORMAT).send(hostile)
    assert body()["blocks"][1]["text"]["text"] == "service &lt;!channel&gt; &amp; &lt;@U123&gt;"


@responses.activate
def test_slack_429_honours_retry_after(transport: HttpTransport) -> None:
    responses.post(SLACK_URL, status=429, headers={"Retry-After": "30"}, body="rate_limited")
    with pytest.raises(NotifyRetryable) as caught:
        JsonWebhookNotifier("slack", SLACK_URL, transport, SLACK_FORMAT).send(MESSAGE)
    assert caught.value.retry_after == 30.0


@pytest.mark.parametrize("status", [500, 502, 503, 504])
@responses.activate
def test_slack_5xx_is_retryable(transport: HttpTransport, status: int) -> None:
    responses.post(SLACK_URL, status=status, body="rollup_error")
    with pytest.raises(NotifyRetryable, match=f"HTTP {status}"):
        JsonWebhookNotifier("slack", SLACK_URL, transport, SLACK_FORMAT).send(MESSAGE)


@pytest.mark.parametrize(("status", "reason"), [
    (400, "invalid_payload"), (403, "action_prohibited"), (404, "channel_not_found"),
    (410, "channel_is_archived"),
])
@responses.activate
def test_slack_4xx_is_not_retried(transport: HttpTransport, status: int, reason: str) -> None:
    responses.post(SLACK_URL, status=status, body=reason)
    with pytest.raises(NotifyPermanent) as caught:
        JsonWebhookNotifier("slack", SLACK_URL, transport, SLACK_FORMAT).send(MESSAGE)
    assert str(caught.value) == f"slack: HTTP {status}: {reason}"
    assert len(responses.calls) == 1


@responses.activate
def test_network_error_is_retryable_and_does_not_name_the_url(transport: HttpTransport) -> None:
    responses.post(SLACK_URL, body=requests.ConnectionError(f"cannot connect to {SLACK_URL}"))
    with pytest.raises(NotifyRetryable) as caught:
        JsonWebhookNotifier("slack", SLACK_URL, transport, SLACK_FORMAT).send(MESSAGE)
    assert "XXXXXXXX" not in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


@responses.activate
def test_requests_always_carry_a_timeout(transport: HttpTransport) -> None:
    responses.post(SLACK_URL, status=200, body="ok")
    JsonWebhookNotifier("slack", SLACK_URL, transport, SLACK_FORMAT).send(MESSAGE)
    sent = responses.calls[0].request
    assert getattr(sent, "req_kwargs", {})["timeout"] == (5.0, 10.0)


# ------------------------------------------------------------------------- Teams


@responses.activate
def test_teams_body_is_an_adaptive_card(transport: HttpTransport) -> None:
    responses.post(TEAMS_URL, status=202)
    JsonWebhookNotifier("teams", TEAMS_URL, transport, TEAMS_FORMAT).send(MESSAGE)
    assert body() == {
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": None,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": [
                    {"type": "TextBlock", "text": MESSAGE.title, "weight": "Bolder",
                     "size": "Medium", "color": "Attention", "wrap": True},
                    {"type": "TextBlock", "text": MESSAGE.text, "wrap": True},
                    {"type": "FactSet", "facts": [
                        {"title": "Target", "value": "app-prod"},
                        {"title": "Alert", "value": "ModelLoadFailure"},
                    ]},
                ],
                "actions": [{"type": "Action.OpenUrl", "title": "execution",
                             "url": "http://127.0.0.1:9096/executions/5"}],
            },
        }],
    }


@responses.activate
def test_teams_card_text_is_plain_not_html_escaped(transport: HttpTransport) -> None:
    responses.post(TEAMS_URL, status=202)
    JsonWebhookNotifier("teams", TEAMS_URL, transport, TEAMS_FORMAT).send(
        Message(**{**MESSAGE.__dict__, "text": "a < b & c"}))
    assert body()["attachments"][0]["content"]["body"][1]["text"] == "a < b & c"


@responses.activate
def test_teams_503_is_retryable(transport: HttpTransport) -> None:
    responses.post(TEAMS_URL, status=503, headers={"Retry-After": "5"})
    with pytest.raises(NotifyRetryable) as caught:
        JsonWebhookNotifier("teams", TEAMS_URL, transport, TEAMS_FORMAT).send(MESSAGE)
    assert caught.value.retry_after == 5.0


# ----------------------------------------------------------------------- webhook


@responses.activate
def test_generic_webhook_body(transport: HttpTransport) -> None:
    responses.post(HOOK_URL, status=204)
    JsonWebhookNotifier("webhook", HOOK_URL, transport, WEBHOOK_FORMAT).send(MESSAGE)
    assert body() == {
        "version": "1", "sender": "remediator", "kind": "trigger", "team": "emergency",
        "level": "page", "severity": "critical", "title": MESSAGE.title, "text": MESSAGE.text,
        "incident_id": "inc-1", "dedup_key": "remediator/inc-1/emergency/page",
        "source": "app-prod",
        "links": {"execution": "http://127.0.0.1:9096/executions/5"},
        "fields": {"Target": "app-prod", "Alert": "ModelLoadFailure"},
    }
    assert responses.calls[0].request.headers["Content-Type"] == "application/json"


@responses.activate
def test_webhook_redirect_is_not_followed(transport: HttpTransport) -> None:
    responses.post(HOOK_URL, status=307, headers={"Location": "https://elsewhere.example/"})
    with pytest.raises(NotifyPermanent, match="HTTP 307"):
        JsonWebhookNotifier("webhook", HOOK_URL, transport, WEBHOOK_FORMAT).send(MESSAGE)
    assert len(responses.calls) == 1


@responses.activate
def test_retry_after_as_an_http_date(transport: HttpTransport) -> None:
    responses.post(HOOK_URL, status=503, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})
    with pytest.raises(NotifyRetryable) as caught:
        JsonWebhookNotifier("webhook", HOOK_URL, transport, WEBHOOK_FORMAT).send(MESSAGE)
    assert caught.value.retry_after == 0.0  # a date in the past: retry on our own schedule


@responses.activate
def test_an_endpoint_echoing_the_secret_does_not_leak_it(transport: HttpTransport) -> None:
    responses.post(PD_URL, status=400, json={"status": "invalid event",
                                             "errors": [f"unknown routing key {ROUTING_KEY}"]})
    with pytest.raises(NotifyPermanent) as caught:
        PagerDutyNotifier("pagerduty", ROUTING_KEY, transport).send(MESSAGE)
    assert ROUTING_KEY not in str(caught.value)
    assert "unknown routing key ***" in str(caught.value)
