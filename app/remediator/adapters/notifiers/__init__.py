"""Notifiers: PagerDuty Events v2, SMTP e-mail, and one JSON-webhook notifier with a
format each for Slack, Microsoft Teams and a generic webhook.

Typical use (the outbox)::

    channels = build_channels(policy.teams[escalation.team], os.environ)
    message = render_message(template_dir, "trigger", context)
    for channel in channels:
        outcome = attempt_delivery(channel, message, attempt=row.attempts + 1,
                                   age=seconds_since_accepted, give_up_after=3600)
        # store outcome.status / outcome.reason; reschedule after outcome.retry_in
"""

from remediator.adapters.notifiers._transport import HttpResponse, HttpTransport
from remediator.adapters.notifiers.base import (
    AttemptOutcome,
    Channel,
    ChannelResult,
    DeliveryReport,
    Message,
    MessageKind,
    Notifier,
    attempt_delivery,
    dispatch,
)
from remediator.adapters.notifiers.channels import build_channel, build_channels
from remediator.adapters.notifiers.email import EmailNotifier, SmtpSettings
from remediator.adapters.notifiers.json_webhook import JsonFormat, JsonWebhookNotifier
from remediator.adapters.notifiers.pagerduty import PagerDutyNotifier
from remediator.adapters.notifiers.render import DEFAULT_TEMPLATE_DIR, render_message
from remediator.adapters.notifiers.slack import SLACK_FORMAT
from remediator.adapters.notifiers.teams import TEAMS_FORMAT
from remediator.adapters.notifiers.webhook import WEBHOOK_FORMAT

__all__ = [
    "DEFAULT_TEMPLATE_DIR",
    "SLACK_FORMAT",
    "TEAMS_FORMAT",
    "WEBHOOK_FORMAT",
    "AttemptOutcome",
    "Channel",
    "ChannelResult",
    "DeliveryReport",
    "EmailNotifier",
    "HttpResponse",
    "HttpTransport",
    "JsonFormat",
    "JsonWebhookNotifier",
    "Message",
    "MessageKind",
    "Notifier",
    "PagerDutyNotifier",
    "SmtpSettings",
    "attempt_delivery",
    "build_channel",
    "build_channels",
    "dispatch",
    "render_message",
]
