"""What is known about an incident, and the conditions an escalation rule tests on it.

A condition is a mapping with one ``fact`` and exactly one operator (no ``eval``)::

    {fact: scenario, in: [out_of_memory, cuda]}     # str facts: eq, ne, in, not_in
    {fact: file_restored, eq: true}                  # bool facts: eq, ne (null = unknown)
    {fact: down_for, ge: 10m}                        # durations: gt, ge, lt, le (90s, 10m, 1h)
    {fact: failing_model_count, ge: 2}               # counts: eq, ne, gt, ge, lt, le
    {fact: labels.severity, eq: critical}            # any alert label, as a str fact

An unknown fact is unknown (``None``): it satisfies ``eq: null`` and nothing else, so a
rule never fires on a fact the caller did not establish.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal, cast

__all__ = [
    "FACTS",
    "OPERATORS",
    "Condition",
    "FactKind",
    "IncidentFacts",
    "aware",
    "fact_kind",
    "fact_value",
]


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


def aware(moment: datetime) -> datetime:
    """``moment`` with a time zone: a naive one is taken as UTC."""
    # Alertmanager timestamps are UTC; a naive datetime from a caller is taken as UTC too,
    # because comparing naive and aware datetimes raises.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _down_for(facts: IncidentFacts) -> timedelta:
    if facts.status != "firing":
        return timedelta(0)
    return max(timedelta(0), aware(facts.now) - aware(facts.starts_at))


def _fallback_for(facts: IncidentFacts) -> timedelta | None:
    if not facts.fallback_active or facts.fallback_since is None:
        return None
    return max(timedelta(0), aware(facts.now) - aware(facts.fallback_since))


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


def fact_kind(name: str) -> FactKind | None:
    """The kind of a fact a rule may test, or None for an unknown name."""
    if name.startswith("labels.") and len(name) > len("labels."):
        return "str"
    return FACTS.get(name)


def fact_value(facts: IncidentFacts, name: str) -> object:
    """The value of one fact (``None``: unknown)."""
    if name.startswith("labels."):
        return facts.labels.get(name[len("labels."):])
    if name in _DERIVED:
        return _DERIVED[name][1](facts)
    return getattr(facts, name)


# ---------------------------------------------------------------- conditions

OPERATORS: Final[Mapping[FactKind, tuple[str, ...]]] = {
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
        return _compare(self.op, fact_value(facts, self.fact), self.operand)

    def explain(self, facts: IncidentFacts) -> str:
        """``down_for=10m00s ≥ 10m``: the actual value next to the test, for the reason."""
        actual = _show(fact_value(facts, self.fact))
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
