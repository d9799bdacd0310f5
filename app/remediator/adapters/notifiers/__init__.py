"""Notifiers: Slack, PagerDuty Events v2, Microsoft Teams, a generic webhook, SMTP e-mail.

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
from remediator.adapters.notifiers.pagerduty import PagerDutyNotifier
from remediator.adapters.notifiers.render import DEFAULT_TEMPLATE_DIR, render_message
from remediator.adapters.notifiers.slack import SlackNotifier
from remediator.adapters.notifiers.teams import TeamsNotifier
from remediator.adapters.notifiers.webhook import WebhookNotifier

__all__ = [
    "DEFAULT_TEMPLATE_DIR",
    "AttemptOutcome",
    "Channel",
    "ChannelResult",
    "DeliveryReport",
    "EmailNotifier",
    "HttpResponse",
    "HttpTransport",
    "Message",
    "MessageKind",
    "Notifier",
    "PagerDutyNotifier",
    "SlackNotifier",
    "SmtpSettings",
    "TeamsNotifier",
    "WebhookNotifier",
    "attempt_delivery",
    "build_channel",
    "build_channels",
    "dispatch",
    "render_message",
]
