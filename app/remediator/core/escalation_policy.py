"""Who is told about an incident, and how loudly: the runbook's "Escalation Criteria" as data.

The policy lives in ``config/escalation.yml``: *teams* (each with the channels that reach
it) and *rules*, each a list of conditions over :class:`IncidentFacts` that must all hold.
This module is the policy's public face; each job lives in its own module:

    escalation_facts     IncidentFacts, the facts a rule may test, and conditions
    escalation_channels  levels, severities, channel types and their settings, teams
    escalation_eval      rules, evaluation, escalations and their dedup keys
    escalation_load      reading the file: every problem with file, line and field
"""

from __future__ import annotations

from remediator.core.escalation_channels import (
    CHANNEL_SCHEMAS,
    DEFAULT_PAGERDUTY_EVENTS_URL,
    LEVELS,
    SEVERITIES,
    ChannelSpec,
    FieldSpec,
    Level,
    TeamConfig,
    ValueRef,
)
from remediator.core.escalation_eval import (
    Escalation,
    EscalationPolicy,
    Rule,
    dedup_key,
    namespaced,
)
from remediator.core.escalation_facts import FACTS, Condition, IncidentFacts
from remediator.core.escalation_load import load_escalation_policy, parse_escalation_policy

__all__ = [
    "CHANNEL_SCHEMAS",
    "DEFAULT_PAGERDUTY_EVENTS_URL",
    "FACTS",
    "LEVELS",
    "SEVERITIES",
    "ChannelSpec",
    "Condition",
    "Escalation",
    "EscalationPolicy",
    "FieldSpec",
    "IncidentFacts",
    "Level",
    "Rule",
    "TeamConfig",
    "ValueRef",
    "dedup_key",
    "load_escalation_policy",
    "namespaced",
    "parse_escalation_policy",
]
