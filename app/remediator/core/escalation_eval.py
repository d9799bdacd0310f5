"""Evaluating the escalation policy: which rules hold for an incident's facts, the
escalations they call for, and the one dedup key each notification is stored under.

Evaluation is pure: the caller passes the facts, including ``now``, so the same code runs
when an execution ends, on the periodic timer for every open incident, and in tests with
an injected clock. Notification is once per :func:`dedup_key`: a rule that keeps matching
on every timer tick yields the same key, and the outbox stores one row per key.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final, Literal, cast

from remediator.core.defaults import NOTIFY_GIVE_UP_S
from remediator.core.escalation_channels import (
    DEFAULT_SEVERITY,
    LEVELS,
    SEVERITIES,
    Level,
    TeamConfig,
)
from remediator.core.escalation_facts import FACTS, Condition, IncidentFacts, aware, fact_value
from remediator.errors import ConfigError

__all__ = [
    "Escalation",
    "EscalationPolicy",
    "OncePer",
    "Rule",
    "dedup_key",
    "namespaced",
]

_DEDUP_KEY_MAX: Final = 255  # PagerDuty rejects longer dedup keys


OncePer = Literal["incident", "target_budget_window", "window"]


@dataclass(frozen=True)
class Rule:
    """When every condition holds, tell ``team`` at ``level``."""

    name: str
    team: str
    level: Level
    severity: str
    reason: str
    conditions: tuple[Condition, ...]
    once_per: OncePer = "incident"


@dataclass(frozen=True)
class Escalation:
    """Decision to tell ``team``; the outbox stores one notification per ``dedup_key``."""

    team: str
    level: Level
    rule: str
    reason: str
    severity: str = "warning"
    dedup_key: str = ""


def namespaced(key: str, namespace: str) -> str:
    """``key`` (``remediator/...``) inside ``namespace``, within PagerDuty's length limit:
    ``remediator/<namespace>/...``; an empty namespace leaves the key as it is."""
    if not namespace:
        return key
    rest = key.removeprefix("remediator/")
    full = f"remediator/{namespace}/{rest}"
    if len(full) <= _DEDUP_KEY_MAX:
        return full
    return f"remediator/{namespace}/{hashlib.sha256(rest.encode()).hexdigest()[:32]}"


def dedup_key(incident_id: str, team: str, level: str) -> str:
    """The one identity of a notification: same incident, team and level → same key.

    It is also PagerDuty's ``dedup_key``, so the resolve event closes the same alert.
    """
    key = f"remediator/{incident_id}/{team}/{level}"
    if len(key) <= _DEDUP_KEY_MAX:
        return key
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    return f"remediator/{digest}/{team}/{level}"[:_DEDUP_KEY_MAX]


_SEVERITY_RANK: Final = {name: rank for rank, name in enumerate(reversed(SEVERITIES))}


class EscalationPolicy:
    """Teams, channels and rules from one file; evaluation is pure and stateless."""

    def __init__(
        self,
        source: str,
        teams: Mapping[str, TeamConfig],
        rules: Sequence[Rule],
        budget_window: timedelta = timedelta(hours=1),
        give_up_after: timedelta = timedelta(seconds=NOTIFY_GIVE_UP_S),
    ) -> None:
        self.source = source
        self.teams: Mapping[str, TeamConfig] = dict(teams)
        self.rules: tuple[Rule, ...] = tuple(rules)
        self.budget_window = budget_window
        self.give_up_after = give_up_after  # a delivery still failing this late fails

    def window_start(self, now: datetime) -> datetime | None:
        """Start of the current budget window when some rule notifies once per window (its
        dedup key changes at each boundary, so it may notify again then), else None."""
        if all(rule.once_per == "incident" for rule in self.rules):
            return None
        return _window_start(now, self.budget_window)

    def evaluate(self, facts: IncidentFacts) -> list[Escalation]:
        """Escalations the facts call for, one per dedup key, in rule order.

        Claimed and resolved incidents call for none: a human owns the first, and the
        second gets resolve notices from the outbox instead.
        """
        found: dict[str, Escalation] = {}
        for escalation in self.matches(facts):
            earlier = found.get(escalation.dedup_key)
            found[escalation.dedup_key] = (
                _merge(earlier, escalation) if earlier else escalation
            )
        return list(found.values())

    def matches(self, facts: IncidentFacts) -> list[Escalation]:
        """One escalation per rule that holds, in rule order, not merged by dedup key:
        which criteria hold (a later one for a key already notified is an update)."""
        if facts.claimed or facts.status != "firing":
            return []
        return [self._escalation(rule, facts) for rule in self.rules
                if all(condition.holds(facts) for condition in rule.conditions)]

    def next_due(self, facts: IncidentFacts) -> datetime | None:
        """When a time-based rule will next start to hold, if nothing else changes.

        Lets the worker wake exactly at the 10-minute mark instead of polling finely.
        """
        if facts.claimed or facts.status != "firing":
            return None
        waits = [w for rule in self.rules if (w := _wait_for(rule, facts)) is not None]
        return aware(facts.now) + min(waits) if waits else None

    def explicit(
        self, incident_id: str, team: str, level: str = "notify", reason: str = "",
        rule: str = "playbook", severity: str | None = None,
    ) -> Escalation:
        """An escalation a playbook asked for (``notify`` step, ``on_failure: escalate``).

        Same dedup key as a rule for the same team and level, so a playbook's request and
        a matching rule notify once between them.
        """
        if team not in self.teams:
            raise ConfigError(
                f"{self.source}: teams: no team {team!r} (teams: {', '.join(self.teams)})"
            )
        if level not in LEVELS:
            raise ConfigError(f"{self.source}: escalation level {level!r} is not one of "
                              f"{', '.join(LEVELS)}")
        checked = cast(Level, level)
        chosen = severity if severity in SEVERITIES else DEFAULT_SEVERITY[checked]
        return Escalation(team, checked, rule, reason, chosen,
                          dedup_key(incident_id, team, checked))

    def env_vars(self) -> frozenset[str]:
        """Every environment variable the channels read (for docs and ``notify-test``)."""
        return frozenset(
            ref.env
            for team in self.teams.values()
            for channel in team.channels
            for ref in channel.settings.values()
            if ref.env
        )

    def _escalation(self, rule: Rule, facts: IncidentFacts) -> Escalation:
        details = ", ".join(condition.explain(facts) for condition in rule.conditions)
        reason = f"{rule.reason} [{details}]" if details else rule.reason
        return Escalation(rule.team, rule.level, rule.name, reason, rule.severity,
                          self._key(rule, facts))

    def _key(self, rule: Rule, facts: IncidentFacts) -> str:
        if rule.once_per == "incident":
            return dedup_key(facts.incident_id, rule.team, rule.level)
        if rule.once_per == "window":  # fleet-wide facts: once per rule and window
            start = _window_start(facts.now, self.budget_window)
            scope = f"window/{rule.name}/{aware(start).strftime('%Y%m%dT%H%M%SZ')}"
            return dedup_key(scope, rule.team, rule.level)
        start = facts.budget_window_start or _window_start(facts.now, self.budget_window)
        scope = f"budget/{facts.target}/{aware(start).strftime('%Y%m%dT%H%M%SZ')}"
        return dedup_key(scope, rule.team, rule.level)


def _merge(first: Escalation, later: Escalation) -> Escalation:
    # Same team, level and key: one notification, carrying every reason and the worst
    # severity, named after the first rule that matched.
    severity = max(first.severity, later.severity, key=lambda s: _SEVERITY_RANK.get(s, 0))
    return Escalation(first.team, first.level, first.rule,
                      f"{first.reason}; {later.reason}", severity, first.dedup_key)


def _window_start(now: datetime, window: timedelta) -> datetime:
    seconds = int(window.total_seconds())
    epoch = int(aware(now).timestamp())
    return datetime.fromtimestamp(epoch - epoch % seconds, tz=UTC)


def _wait_for(rule: Rule, facts: IncidentFacts) -> timedelta | None:
    timed = [c for c in rule.conditions
             if FACTS.get(c.fact) == "duration" and c.op in ("gt", "ge")]
    others = [c for c in rule.conditions if c not in timed]
    if not timed or not all(c.holds(facts) for c in others):
        return None
    waits = []
    for condition in timed:
        current = fact_value(facts, condition.fact)
        if not isinstance(current, timedelta):
            return None  # the clock for this fact has not started
        wait = condition.operand - current
        if condition.op == "gt" and wait >= timedelta(0):
            wait += timedelta(microseconds=1)
        waits.append(wait)
    longest = max(waits)
    return longest if longest > timedelta(0) else None
