"""Who is told about an incident, and how loudly: the runbook's "Escalation Criteria" as data.

The policy lives in ``config/escalation.yml``: *teams* (each with the channels that reach
it) and *rules*, each a list of conditions over :class:`IncidentFacts` that must all hold.
Evaluation is pure — the caller passes the facts, including ``now`` — so the same code
runs when an execution ends, on the periodic timer for every open incident, and in tests
with an injected clock.

Condition language (deliberately small, no ``eval``): a condition is a mapping with one
``fact`` and exactly one operator::

    {fact: scenario, in: [out_of_memory, cuda]}     # str facts: eq, ne, in, not_in
    {fact: file_restored, eq: true}                  # bool facts: eq, ne (null = unknown)
    {fact: down_for, ge: 10m}                        # durations: gt, ge, lt, le (90s, 10m, 1h)
    {fact: failing_model_count, ge: 2}               # counts: eq, ne, gt, ge, lt, le
    {fact: labels.severity, eq: critical}            # any alert label, as a str fact

An unknown fact is unknown (``None``): it satisfies ``eq: null`` and nothing else, so a
rule never fires on a fact the caller did not establish.

Notification is once per :func:`dedup_key`: a rule that keeps matching on every timer tick
yields the same key, and the outbox stores one row per key.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final, Literal, cast

import yaml

from remediator.core._yaml import type_name
from remediator.core.defaults import NOTIFY_GIVE_UP_S
from remediator.core.units import parse_duration
from remediator.errors import ConfigError

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

Level = Literal["page", "notify"]
LEVELS: Final = ("page", "notify")
"""``page`` wakes someone up (PagerDuty); ``notify`` is a message people read in hours."""

SEVERITIES: Final = ("critical", "error", "warning", "info")
"""PagerDuty Events v2 severities; every channel shows the same word."""

_DEFAULT_SEVERITY: Final[dict[str, str]] = {"page": "critical", "notify": "warning"}

DEFAULT_PAGERDUTY_EVENTS_URL: Final = "https://events.pagerduty.com/v2/enqueue"
"""Where PagerDuty Events API v2 events go unless ``events_url`` says otherwise."""

_DEDUP_KEY_MAX: Final = 255  # PagerDuty rejects longer dedup keys
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


# --------------------------------------------------------------------------- facts


@dataclass(frozen=True)
class IncidentFacts:
    """What is known about one incident at ``now``. Unknown tri-state facts stay ``None``."""

    incident_id: str
    target: str
    service: str
    alertname: str
    starts_at: datetime  # when the service went down (the alert's startsAt less its for:)
    now: datetime
    status: str = "firing"  # firing | resolved
    scenario: str | None = None  # runbook scenario from diagnose.classify
    file_restored: bool = False  # the playbook copied the model file back from backup
    still_failing: bool = False  # the model still does not load (after the last fix)
    failing_models: AbstractSet[str] = frozenset()  # names of models that fail to load
    affected_services: AbstractSet[str] = frozenset()  # services with a firing alert
    fallback_active: bool = False  # the fallback model is serving (degraded)
    fallback_since: datetime | None = None
    fallback_available: bool | None = None  # None: not checked
    backup_checksum_ok: bool | None = None  # None: not checked
    budget_exhausted: bool = False  # the target's runs-per-window budget is spent
    budget_window_start: datetime | None = None  # None: derived from now and budget_window
    claimed: bool = False  # a human took over: Remediator stays quiet
    severity: str | None = None  # the alert's severity label
    execution_outcome: str | None = None  # outcome of the execution that just ended
    # Of a `failed` execution: the phase (diagnose | fix | validate) of the step whose
    # failure ended it, or "none" when no step failed (it crashed or could not start).
    failed_phase: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)


def _aware(moment: datetime) -> datetime:
    # Alertmanager timestamps are UTC; a naive datetime from a caller is taken as UTC too,
    # because comparing naive and aware datetimes raises.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _down_for(facts: IncidentFacts) -> timedelta:
    if facts.status != "firing":
        return timedelta(0)
    return max(timedelta(0), _aware(facts.now) - _aware(facts.starts_at))


def _fallback_for(facts: IncidentFacts) -> timedelta | None:
    if not facts.fallback_active or facts.fallback_since is None:
        return None
    return max(timedelta(0), _aware(facts.now) - _aware(facts.fallback_since))


FactKind = Literal["str", "bool", "duration", "count"]

_DERIVED: Final[dict[str, tuple[FactKind, Callable[[IncidentFacts], object]]]] = {
    "down_for": ("duration", _down_for),
    "fallback_for": ("duration", _fallback_for),
    "failing_model_count": ("count", lambda f: len(f.failing_models)),
    "affected_service_count": ("count", lambda f: len(f.affected_services)),
}

_STR_FACTS = (
    "incident_id", "target", "service", "alertname", "status", "scenario", "severity",
    "execution_outcome", "failed_phase",
)
_BOOL_FACTS = (
    "file_restored", "still_failing", "fallback_active", "fallback_available",
    "backup_checksum_ok", "budget_exhausted", "claimed",
)

FACTS: Final[Mapping[str, FactKind]] = {
    **dict.fromkeys(_STR_FACTS, "str"),
    **dict.fromkeys(_BOOL_FACTS, "bool"),
    **{name: kind for name, (kind, _) in _DERIVED.items()},
}
"""Fact names a rule may test, with their kind; plus ``labels.<name>`` (str)."""


def _fact_kind(name: str) -> FactKind | None:
    if name.startswith("labels.") and len(name) > len("labels."):
        return "str"
    return FACTS.get(name)


def _fact_value(facts: IncidentFacts, name: str) -> object:
    if name.startswith("labels."):
        return facts.labels.get(name[len("labels."):])
    if name in _DERIVED:
        return _DERIVED[name][1](facts)
    return getattr(facts, name)


# ------------------------------------------------------------------- conditions

_OPS: Final[Mapping[FactKind, tuple[str, ...]]] = {
    "str": ("eq", "ne", "in", "not_in"),
    "bool": ("eq", "ne"),
    "duration": ("gt", "ge", "lt", "le"),
    "count": ("eq", "ne", "gt", "ge", "lt", "le"),
}
_SYMBOL: Final = {"eq": "=", "ne": "≠", "gt": ">", "ge": "≥", "lt": "<", "le": "≤",
                  "in": "in", "not_in": "not in"}


@dataclass(frozen=True)
class Condition:
    """One test of one fact; ``operand`` is already parsed (timedelta for durations)."""

    fact: str
    op: str
    operand: Any

    def holds(self, facts: IncidentFacts) -> bool:
        return _compare(self.op, _fact_value(facts, self.fact), self.operand)

    def explain(self, facts: IncidentFacts) -> str:
        """``down_for=10m00s ≥ 10m``: the actual value next to the test, for the reason."""
        actual = _show(_fact_value(facts, self.fact))
        if self.op == "eq":
            return f"{self.fact}={actual}"
        return f"{self.fact}={actual} ({_SYMBOL[self.op]} {_show(self.operand)})"


def _compare(op: str, actual: object, operand: Any) -> bool:
    if op == "eq":
        return actual == operand
    if op == "ne":
        return actual != operand
    if op in ("in", "not_in"):
        return (actual in operand) == (op == "in")
    if actual is None:
        return False  # an unknown duration or count satisfies no ordering
    value = cast(Any, actual)
    return {
        "gt": value > operand, "ge": value >= operand,
        "lt": value < operand, "le": value <= operand,
    }[op]


def _show(value: object) -> str:
    if isinstance(value, timedelta):
        minutes, seconds = divmod(int(value.total_seconds()), 60)
        return f"{minutes}m" if not seconds else f"{minutes}m{seconds:02d}s"
    if isinstance(value, bool) or value is None:
        return str(value).lower() if value is not None else "unknown"
    if isinstance(value, (list, tuple, frozenset, set)):
        return "[" + ", ".join(sorted(str(v) for v in value)) + "]"
    return str(value)


# ------------------------------------------------------------------ rules, teams

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
class ValueRef:
    """Where a channel setting comes from: an environment variable, a file, or the YAML."""

    env: str | None = None
    file: str | None = None
    literal: str | None = None
    default: str | None = None

    def describe(self, secret: bool) -> str:
        """How the API shows the setting without resolving it."""
        if self.env:
            return f"env:{self.env}"
        if self.file:
            return f"file:{self.file}"
        return "***" if secret else str(self.literal)


@dataclass(frozen=True)
class FieldSpec:
    """A setting a channel type understands."""

    required: bool = False
    secret: bool = False
    default: str | None = None


CHANNEL_SCHEMAS: Final[Mapping[str, Mapping[str, FieldSpec]]] = {
    "slack": {"webhook_url": FieldSpec(required=True, secret=True)},
    "pagerduty": {
        "routing_key": FieldSpec(required=True, secret=True),
        "events_url": FieldSpec(default=DEFAULT_PAGERDUTY_EVENTS_URL),
    },
    "teams": {"webhook_url": FieldSpec(required=True, secret=True)},
    "webhook": {"url": FieldSpec(required=True, secret=True)},
    "email": {
        "host": FieldSpec(required=True),
        "port": FieldSpec(),  # default depends on tls: 465 for ssl, 25 otherwise
        "username": FieldSpec(),
        "password": FieldSpec(secret=True),
        "sender": FieldSpec(required=True),
        "recipients": FieldSpec(required=True),  # comma-separated
        "tls": FieldSpec(default="auto"),  # auto | starttls | ssl | none
        "timeout": FieldSpec(default="10"),
        "ca_file": FieldSpec(),  # CA bundle for a server certificate from a private CA
    },
}
"""Channel types and their settings; anything else in a channel is a config error."""


@dataclass(frozen=True)
class ChannelSpec:
    """A channel as configured (settings unresolved: secrets are read when sending)."""

    name: str
    type: str
    settings: Mapping[str, ValueRef]
    levels: frozenset[str] = frozenset(LEVELS)

    def describe(self) -> dict[str, object]:
        schema = CHANNEL_SCHEMAS[self.type]
        return {
            "name": self.name,
            "type": self.type,
            "levels": sorted(self.levels),
            "settings": {k: v.describe(schema[k].secret) for k, v in self.settings.items()},
        }


@dataclass(frozen=True)
class TeamConfig:
    """A team and the channels that reach it, in the order they are tried."""

    name: str
    description: str
    channels: tuple[ChannelSpec, ...]


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


# ----------------------------------------------------------------------- policy

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
        return _aware(facts.now) + min(waits) if waits else None

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
        chosen = severity if severity in SEVERITIES else _DEFAULT_SEVERITY[checked]
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
            scope = f"window/{rule.name}/{_aware(start).strftime('%Y%m%dT%H%M%SZ')}"
            return dedup_key(scope, rule.team, rule.level)
        start = facts.budget_window_start or _window_start(facts.now, self.budget_window)
        scope = f"budget/{facts.target}/{_aware(start).strftime('%Y%m%dT%H%M%SZ')}"
        return dedup_key(scope, rule.team, rule.level)


def _merge(first: Escalation, later: Escalation) -> Escalation:
    # Same team, level and key: one notification, carrying every reason and the worst
    # severity, named after the first rule that matched.
    severity = max(first.severity, later.severity, key=lambda s: _SEVERITY_RANK.get(s, 0))
    return Escalation(first.team, first.level, first.rule,
                      f"{first.reason}; {later.reason}", severity, first.dedup_key)


def _window_start(now: datetime, window: timedelta) -> datetime:
    seconds = int(window.total_seconds())
    epoch = int(_aware(now).timestamp())
    return datetime.fromtimestamp(epoch - epoch % seconds, tz=UTC)


def _wait_for(rule: Rule, facts: IncidentFacts) -> timedelta | None:
    timed = [c for c in rule.conditions
             if FACTS.get(c.fact) == "duration" and c.op in ("gt", "ge")]
    others = [c for c in rule.conditions if c not in timed]
    if not timed or not all(c.holds(facts) for c in others):
        return None
    waits = []
    for condition in timed:
        current = _fact_value(facts, condition.fact)
        if not isinstance(current, timedelta):
            return None  # the clock for this fact has not started
        wait = condition.operand - current
        if condition.op == "gt" and wait >= timedelta(0):
            wait += timedelta(microseconds=1)
        waits.append(wait)
    longest = max(waits)
    return longest if longest > timedelta(0) else None


# ---------------------------------------------------------------------- loading

_TOP_KEYS: Final = {"version", "budget_window", "give_up_after", "channels", "teams", "rules"}
_RULE_KEYS: Final = {"name", "team", "level", "severity", "reason", "when", "once_per"}
_CHANNEL_KEYS: Final = {"type", "name", "levels"}


def load_escalation_policy(path: str | Path) -> EscalationPolicy:
    """Read and validate ``path``; every problem is a ConfigError naming file and key."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read escalation policy: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{source}:{where}: not valid YAML") from None
    base = Path(path).resolve().parent
    return parse_escalation_policy(data, source, base_dir=base)


def parse_escalation_policy(
    data: object, source: str = "<escalation policy>", base_dir: Path | None = None
) -> EscalationPolicy:
    """Validate already-parsed YAML; ``base_dir`` anchors relative ``file:`` paths."""
    top = _mapping(data, source, "")
    _no_unknown_keys(top, _TOP_KEYS, source, "", allow_x=True)
    if top.get("version", 1) != 1:
        raise ConfigError(f"{source}: version: only version 1 is understood")
    loader = _Loader(source, base_dir or Path.cwd())
    shared = loader.shared_channels(top.get("channels", {}))
    teams = loader.teams(top.get("teams"), shared)
    rules = loader.rules(top.get("rules", []), teams)
    window = loader.duration(top.get("budget_window", "1h"), "budget_window")
    if window <= timedelta(0):
        raise ConfigError(f"{source}: budget_window: must be longer than 0s")
    give_up = loader.duration(top.get("give_up_after", "1h"), "give_up_after")
    if give_up <= timedelta(0):
        raise ConfigError(f"{source}: give_up_after: must be longer than 0s")
    return EscalationPolicy(source, teams, rules, window, give_up)


def _mapping(value: object, source: str, key: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        where = f" {key}:" if key else ""
        raise ConfigError(f"{source}:{where} expected a mapping, got {type_name(value)}")
    return cast(dict[str, Any], value)


def _no_unknown_keys(
    value: Mapping[str, Any], allowed: set[str], source: str, key: str, allow_x: bool = False
) -> None:
    # YAML anchors are conventionally parked under x-... keys; those are not typos.
    unknown = [k for k in value if k not in allowed and not (allow_x and str(k).startswith("x-"))]
    if unknown:
        prefix = f"{key}." if key else ""
        raise ConfigError(
            f"{source}: {prefix}{unknown[0]}: unknown key (expected one of: "
            f"{', '.join(sorted(allowed))})"
        )


class _Loader:
    """Turns validated YAML pieces into policy objects; knows the file for messages."""

    def __init__(self, source: str, base_dir: Path) -> None:
        self.source = source
        self.base_dir = base_dir
        self.rule_name: str | None = None  # the rule being read, named in its errors

    def fail(self, key: str, problem: str) -> ConfigError:
        rule = f" rule {self.rule_name!r}:" if self.rule_name else ""
        return ConfigError(f"{self.source}:{rule} {key}: {problem}")

    def duration(self, value: object, key: str) -> timedelta:
        try:
            return timedelta(seconds=parse_duration(value))
        except ValueError as exc:
            raise self.fail(key, str(exc)) from None

    # channels ------------------------------------------------------------------

    def shared_channels(self, value: object) -> dict[str, ChannelSpec]:
        channels = _mapping(value, self.source, "channels")
        return {str(name): self.channel(spec, f"channels.{name}", str(name))
                for name, spec in channels.items()}

    def channel(self, value: object, key: str, default_name: str) -> ChannelSpec:
        spec = _mapping(value, self.source, key)
        kind = spec.get("type")
        if not isinstance(kind, str) or kind not in CHANNEL_SCHEMAS:
            raise self.fail(f"{key}.type", f"unknown channel type {kind!r} (known: "
                                           f"{', '.join(CHANNEL_SCHEMAS)})")
        schema = CHANNEL_SCHEMAS[kind]
        _no_unknown_keys(spec, _CHANNEL_KEYS | set(schema), self.source, key)
        settings = {name: self.value_ref(spec[name], f"{key}.{name}", field_spec)
                    for name, field_spec in schema.items() if name in spec}
        for name, field_spec in schema.items():
            if field_spec.required and name not in settings:
                raise self.fail(f"{key}.{name}", f"required for a {kind} channel")
            if name not in settings and field_spec.default is not None:
                settings[name] = ValueRef(literal=field_spec.default)
        levels = self.levels(spec.get("levels", list(LEVELS)), f"{key}.levels")
        return ChannelSpec(str(spec.get("name", default_name)), kind, settings, levels)

    def levels(self, value: object, key: str) -> frozenset[str]:
        if not isinstance(value, list) or not value or any(v not in LEVELS for v in value):
            raise self.fail(key, f"expected a non-empty list of {' / '.join(LEVELS)}")
        return frozenset(value)

    def value_ref(self, value: object, key: str, spec: FieldSpec) -> ValueRef:
        if isinstance(value, dict):
            return self.indirect_ref(value, key)
        if spec.secret:
            raise self.fail(key, "is a secret: give it as {env: NAME} or {file: PATH}, "
                                 "never written in the file")
        if not isinstance(value, (str, int, float, bool)):
            raise self.fail(key, "expected a string, {env: NAME} or {file: PATH}")
        return ValueRef(literal=str(value).lower() if isinstance(value, bool) else str(value))

    def indirect_ref(self, value: dict[str, Any], key: str) -> ValueRef:
        _no_unknown_keys(value, {"env", "file", "default"}, self.source, key)
        if ("env" in value) == ("file" in value):
            raise self.fail(key, "give exactly one of env: or file:")
        default = value.get("default")
        default_text = None if default is None else str(default)
        if "env" in value:
            name = value["env"]
            if not isinstance(name, str) or not _ENV_NAME.match(name):
                raise self.fail(f"{key}.env", f"{name!r} is not an environment variable name")
            return ValueRef(env=name, default=default_text)
        path = value["file"]
        if not isinstance(path, str) or not path:
            raise self.fail(f"{key}.file", "expected a file path")
        return ValueRef(file=str(self.base_dir / path), default=default_text)

    # teams ---------------------------------------------------------------------

    def teams(self, value: object, shared: Mapping[str, ChannelSpec]) -> dict[str, TeamConfig]:
        teams = _mapping(value, self.source, "teams")
        if not teams:
            raise self.fail("teams", "at least one team is needed")
        return {str(name): self.team(str(name), spec, shared) for name, spec in teams.items()}

    def team(self, name: str, value: object, shared: Mapping[str, ChannelSpec]) -> TeamConfig:
        key = f"teams.{name}"
        spec = _mapping(value, self.source, key)
        _no_unknown_keys(spec, {"description", "channels"}, self.source, key)
        items = spec.get("channels")
        if not isinstance(items, list) or not items:
            raise self.fail(f"{key}.channels", "expected a non-empty list of channels")
        channels = tuple(self.team_channel(item, f"{key}.channels[{i}]", shared)
                         for i, item in enumerate(items))
        self.unique_channel_names(channels, f"{key}.channels")
        return TeamConfig(name, str(spec.get("description", "")), channels)

    def unique_channel_names(self, channels: Sequence[ChannelSpec], key: str) -> None:
        # A delivery is stored per (notification, channel name): two channels of one team
        # with one name could never both be sent to (nor told apart in the API).
        names = [channel.name for channel in channels]
        for index, name in enumerate(names):
            if name in names[:index]:
                raise self.fail(f"{key}[{index}]", (
                    f"team has two channels named {name!r} (channels[{names.index(name)}] "
                    f"and channels[{index}]); give one a different `name:` (an inline "
                    f"channel is named after its type unless it says `name:`)"))

    def team_channel(self, item: object, key: str, shared: Mapping[str, ChannelSpec]
                     ) -> ChannelSpec:
        if isinstance(item, str):
            if item not in shared:
                raise self.fail(key, f"no channel named {item!r} under channels: "
                                     f"(defined: {', '.join(shared) or 'none'})")
            return shared[item]
        spec = _mapping(item, self.source, key)
        return self.channel(spec, key, str(spec.get("type", "channel")))

    # rules ---------------------------------------------------------------------

    def rules(self, value: object, teams: Mapping[str, TeamConfig]) -> list[Rule]:
        if not isinstance(value, list):
            raise self.fail("rules", "expected a list of rules")
        rules = [self.rule(item, f"rules[{i}]", teams) for i, item in enumerate(value)]
        names = [rule.name for rule in rules]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise self.fail("rules", f"rule name {duplicates[0]!r} is used twice")
        return rules

    def rule(self, value: object, key: str, teams: Mapping[str, TeamConfig]) -> Rule:
        spec = _mapping(value, self.source, key)
        _no_unknown_keys(spec, _RULE_KEYS, self.source, key)
        name = spec.get("name")
        if not isinstance(name, str) or not name:
            raise self.fail(f"{key}.name", "every rule needs a name")
        self.rule_name = name
        try:
            return self.named_rule(name, spec, key, teams)
        finally:
            self.rule_name = None

    def named_rule(self, name: str, spec: Mapping[str, Any], key: str,
                   teams: Mapping[str, TeamConfig]) -> Rule:
        team = spec.get("team")
        if team not in teams:
            raise self.fail(f"{key}.team", f"unknown team {team!r} (teams: {', '.join(teams)})")
        level = spec.get("level")
        if level not in LEVELS:
            raise self.fail(f"{key}.level", f"expected one of {', '.join(LEVELS)}")
        channels = teams[str(team)].channels
        if not any(level in channel.levels for channel in channels):
            raise self.fail(f"{key}.level", (
                f"no channel of team {team!r} takes {level} notifications (its channels: "
                + ", ".join(f"{c.name} [{'/'.join(sorted(c.levels))}]" for c in channels)
                + "); add one, or widen a channel's `levels:`"))
        severity = spec.get("severity", _DEFAULT_SEVERITY[level])
        if severity not in SEVERITIES:
            raise self.fail(f"{key}.severity", f"expected one of {', '.join(SEVERITIES)}")
        once_per = spec.get("once_per", "incident")
        if once_per not in ("incident", "target_budget_window", "window"):
            raise self.fail(f"{key}.once_per",
                            "expected incident, target_budget_window or window")
        return Rule(name, str(team), level, severity, str(spec.get("reason", name)),
                    self.conditions(spec.get("when"), f"{key}.when"), once_per)

    def conditions(self, value: object, key: str) -> tuple[Condition, ...]:
        if not isinstance(value, list) or not value:
            raise self.fail(key, "expected a non-empty list of conditions")
        return tuple(self.condition(item, f"{key}[{i}]") for i, item in enumerate(value))

    def condition(self, value: object, key: str) -> Condition:
        spec = _mapping(value, self.source, key)
        fact = spec.get("fact")
        kind = _fact_kind(fact) if isinstance(fact, str) else None
        if not isinstance(fact, str) or kind is None:
            raise self.fail(f"{key}.fact", f"unknown fact {fact!r} (known: "
                                           f"{', '.join(sorted(FACTS))}, labels.<name>)")
        ops = [k for k in spec if k != "fact"]
        if len(ops) != 1 or ops[0] not in _OPS[kind]:
            raise self.fail(key, f"a {kind} fact takes exactly one of "
                                 f"{', '.join(_OPS[kind])}, got {', '.join(map(str, ops))}")
        op = ops[0]
        return Condition(fact, op, self.operand(kind, op, spec[op], f"{key}.{op}"))

    def operand(self, kind: FactKind, op: str, value: object, key: str) -> Any:
        if kind == "duration":
            return self.duration(value, key)
        if kind == "count":
            if not isinstance(value, int) or isinstance(value, bool):
                raise self.fail(key, f"expected a whole number, got {value!r}")
            return value
        if kind == "bool":
            if value is not None and not isinstance(value, bool):
                raise self.fail(key, f"expected true, false or null, got {value!r}")
            return value
        return self.str_operand(op, value, key)

    def str_operand(self, op: str, value: object, key: str) -> Any:
        if op in ("in", "not_in"):
            if not isinstance(value, list) or not value:
                raise self.fail(key, "expected a non-empty list")
            return frozenset(self.str_value(v, f"{key}[{i}]") for i, v in enumerate(value))
        return self.str_value(value, key)

    def str_value(self, value: object, key: str) -> str | None:
        if isinstance(value, bool):
            # YAML 1.1 reads an unquoted yes/no/on/off/true/false as a boolean: `eq: yes`
            # would silently compare the label with 'True'.
            raise self.fail(key, f"YAML read this as the boolean {str(value).lower()} (an "
                                 f"unquoted yes/no/on/off/true/false), but the fact is a "
                                 f"string: quote it, e.g. 'yes' or 'on'")
        if value is not None and not isinstance(value, (str, int, float)):
            raise self.fail(key, f"expected a string, got {value!r}")
        return None if value is None else str(value)

