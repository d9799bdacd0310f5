"""Loading ``config/escalation.yml``: every problem, with file, line and field.

The policy file is read with the line-aware YAML loader and walked with the same
:class:`~remediator.core._schema.Checker` the playbooks and the config use, so
``remediator validate`` lists every problem at once (``escalation.yml:14: rule 'down':
rules[0].when[1].fact: unknown fact 'downtime' ...``) and ``load_escalation_policy``
raises one ConfigError listing them all. Problems inside a rule name the rule.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any, Final, cast

from remediator.core._schema import Checker, join_field, suggest
from remediator.core._yaml import child_line, load_yaml_text
from remediator.core.escalation_channels import (
    CHANNEL_SCHEMAS,
    DEFAULT_SEVERITY,
    LEVELS,
    SEVERITIES,
    ChannelSpec,
    FieldSpec,
    Level,
    TeamConfig,
    ValueRef,
)
from remediator.core.escalation_eval import EscalationPolicy, Rule
from remediator.core.escalation_facts import FACTS, OPERATORS, Condition, FactKind, fact_kind
from remediator.core.problems import Problem, format_problems
from remediator.core.units import parse_duration
from remediator.errors import ConfigError

__all__ = [
    "check_escalation_data",
    "check_escalation_file",
    "load_escalation_policy",
    "parse_escalation_policy",
]

_TOP_KEYS: Final = ("version", "budget_window", "give_up_after", "channels", "teams", "rules")
_RULE_KEYS: Final = ("name", "team", "level", "severity", "reason", "when", "once_per")
_CHANNEL_KEYS: Final = ("type", "name", "levels")
_REF_KEYS: Final = ("env", "file", "default")
_ONCE_PER: Final = ("incident", "target_budget_window", "window")
_HOUR: Final = timedelta(hours=1)  # budget_window and give_up_after when absent
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def load_escalation_policy(path: str | Path) -> EscalationPolicy:
    """Read and check ``path``; ConfigError lists every problem as file:line: field: what."""
    policy, problems = check_escalation_file(Path(path))
    return _or_raise(policy, problems)


def parse_escalation_policy(
    data: object, source: str = "<escalation policy>", base_dir: Path | None = None
) -> EscalationPolicy:
    """Check already-parsed YAML; ``base_dir`` anchors relative ``file:`` paths."""
    return _or_raise(*check_escalation_data(data, source, base_dir))


def check_escalation_file(path: Path) -> tuple[EscalationPolicy | None, list[Problem]]:
    """The policy in ``path`` (None if anything is wrong) and its problems."""
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else str(exc)
        return None, [Problem(source, 0, "", f"cannot read escalation policy: {reason}")]
    data, problems = load_yaml_text(text, source)
    if problems:
        return None, problems
    return check_escalation_data(data, source, path.resolve().parent)


def check_escalation_data(
    data: object, source: str, base_dir: Path | None = None,
) -> tuple[EscalationPolicy | None, list[Problem]]:
    """The policy in parsed YAML (None if anything is wrong) and its problems, by line."""
    loader = _Loader(source, base_dir or Path.cwd())
    policy = loader.policy(data)
    problems = sorted(loader.check.problems, key=lambda p: p.line)
    return (None if problems else policy), problems


def _or_raise(policy: EscalationPolicy | None, problems: list[Problem]) -> EscalationPolicy:
    if problems or policy is None:
        raise ConfigError(format_problems(problems))
    return policy


class _Loader:
    """Walks one policy file, recording every problem, and builds the policy objects.

    A part with a problem comes back as None and what depends on it is not checked
    again (a rule of a team whose channel is broken is not told the team has no channel),
    so each mistake is reported once.
    """

    def __init__(self, source: str, base_dir: Path) -> None:
        self.check = Checker(source)
        self.source = source
        self.base_dir = base_dir
        self.rule_name: str | None = None  # the rule being read, named in its problems
        self.broken_channels: set[str] = set()  # shared channels with a problem
        self.channels_unreadable = False  # channels: itself is not a mapping
        self.incomplete_teams: set[str] = set()  # teams with a channel with a problem

    # where ---------------------------------------------------------------------

    def problem(self, container: object, key: object, parent: str, message: str) -> None:
        """A problem about ``container[key]`` at that key's line."""
        self.add(child_line(container, key), join_field(parent, key), message)

    def add(self, line: int, field: str, message: str) -> None:
        """A problem at ``line``; inside a rule, the field names the rule."""
        self.check.add(line, self._field(field), message)

    def count(self) -> int:
        return len(self.check.problems)

    def mapping(self, container: Any, key: object, parent: str) -> dict[Any, Any] | None:
        """``container[key]`` (a dict's or a list's) if it is a mapping, else a problem."""
        value = container.get(key) if isinstance(container, dict) else container[key]
        if isinstance(value, dict):
            return value
        self.check.mapping(value, self._field(join_field(parent, key)),
                           child_line(container, key))
        return None

    def keys(self, mapping: dict[Any, Any], field: str, allowed: tuple[str, ...]) -> None:
        """A problem for each unknown key, with a spelling hint."""
        for key in mapping:
            # YAML anchors are conventionally parked under top-level x-... keys.
            if key in allowed or (not field and str(key).startswith("x-")):
                continue
            self.problem(mapping, key, field, f"unknown key{suggest(str(key), allowed)}; "
                                              f"allowed: {', '.join(sorted(allowed))}")

    def _field(self, field: str) -> str:
        return f"rule {self.rule_name!r}: {field}" if self.rule_name else field

    def duration(self, container: Any, key: str, parent: str) -> timedelta | None:
        """``container[key]`` as a duration, else a problem and None."""
        try:
            return timedelta(seconds=parse_duration(container[key]))
        except ValueError as exc:
            self.problem(container, key, parent, str(exc))
            return None

    def period(self, top: dict[Any, Any], key: str) -> timedelta | None:
        """A top-level period longer than 0s (an hour when absent), else a problem."""
        if key not in top:
            return _HOUR
        value = self.duration(top, key, "")
        if value is not None and value <= timedelta(0):
            self.problem(top, key, "", "must be longer than 0s")
            return None
        return value

    # the file ------------------------------------------------------------------

    def policy(self, data: object) -> EscalationPolicy | None:
        top = self.check.mapping(data, "", getattr(data, "line", 1))
        if top is None:
            return None
        self.keys(top, "", _TOP_KEYS)
        if top.get("version", 1) != 1:
            self.problem(top, "version", "", "only version 1 is understood")
        shared = self.shared_channels(top) if "channels" in top else {}
        teams = self.teams(top, shared)
        rules = self.rules(top, teams)
        window = self.period(top, "budget_window")
        give_up = self.period(top, "give_up_after")
        if self.count() or teams is None or rules is None or window is None or give_up is None:
            return None
        return EscalationPolicy(self.source, teams, rules, window, give_up)

    # channels ------------------------------------------------------------------

    def shared_channels(self, top: dict[Any, Any]) -> dict[str, ChannelSpec]:
        channels = self.mapping(top, "channels", "")
        self.channels_unreadable = channels is None
        found: dict[str, ChannelSpec] = {}
        for name in channels or {}:
            channel = self.channel(channels, name, "channels", str(name))
            if channel is None:
                self.broken_channels.add(str(name))
            else:
                found[str(name)] = channel
        return found

    def channel(self, container: Any, key: object, parent: str,
                default_name: str) -> ChannelSpec | None:
        spec = self.mapping(container, key, parent)
        if spec is None:
            return None
        field = join_field(parent, key)
        kind = spec.get("type")
        if not isinstance(kind, str) or kind not in CHANNEL_SCHEMAS:
            self.problem(spec, "type", field, f"unknown channel type {kind!r} (known: "
                                              f"{', '.join(CHANNEL_SCHEMAS)})")
            return None
        before = self.count()
        schema = CHANNEL_SCHEMAS[kind]
        self.keys(spec, field, (*_CHANNEL_KEYS, *schema))
        settings = {name: self.value_ref(spec, name, field, field_spec)
                    for name, field_spec in schema.items() if name in spec}
        for name, field_spec in schema.items():
            if field_spec.required and name not in spec:
                self.add(child_line(spec, name), join_field(field, name),
                         f"required for a {kind} channel")
            if name not in spec and field_spec.default is not None:
                settings[name] = ValueRef(literal=field_spec.default)
        levels = self.levels(spec, field)
        if self.count() > before or levels is None:
            return None
        name = spec.get("name", default_name)
        return ChannelSpec(str(name), kind, _complete(settings), levels)

    def levels(self, spec: dict[Any, Any], field: str) -> frozenset[str] | None:
        value = spec.get("levels", list(LEVELS))
        if not isinstance(value, list) or not value or any(v not in LEVELS for v in value):
            self.problem(spec, "levels", field,
                         f"expected a non-empty list of {' / '.join(LEVELS)}")
            return None
        return frozenset(value)

    def value_ref(self, spec: dict[Any, Any], key: str, parent: str,
                  field_spec: FieldSpec) -> ValueRef | None:
        value = spec[key]
        if isinstance(value, dict):
            return self.indirect_ref(spec, key, parent)
        if field_spec.secret:
            self.problem(spec, key, parent, "is a secret: give it as {env: NAME} or "
                                            "{file: PATH}, never written in the file")
            return None
        if not isinstance(value, (str, int, float, bool)):
            self.problem(spec, key, parent, "expected a string, {env: NAME} or {file: PATH}")
            return None
        return ValueRef(literal=str(value).lower() if isinstance(value, bool) else str(value))

    def indirect_ref(self, spec: dict[Any, Any], key: str, parent: str) -> ValueRef | None:
        value: dict[Any, Any] = spec[key]
        field = join_field(parent, key)
        self.keys(value, field, _REF_KEYS)
        if ("env" in value) == ("file" in value):
            self.problem(spec, key, parent, "give exactly one of env: or file:")
            return None
        default = value.get("default")
        default_text = None if default is None else str(default)
        if "env" in value:
            name = value["env"]
            if not isinstance(name, str) or not _ENV_NAME.match(name):
                self.problem(value, "env", field,
                             f"{name!r} is not an environment variable name")
                return None
            return ValueRef(env=name, default=default_text)
        path = value["file"]
        if not isinstance(path, str) or not path:
            self.problem(value, "file", field, "expected a file path")
            return None
        return ValueRef(file=str(self.base_dir / path), default=default_text)

    # teams ---------------------------------------------------------------------

    def teams(self, top: dict[Any, Any], shared: Mapping[str, ChannelSpec]
              ) -> dict[str, TeamConfig] | None:
        if "teams" not in top:
            self.problem(top, "teams", "", "is required: at least one team is needed")
            return None
        teams = self.mapping(top, "teams", "")
        if teams is None:
            return None
        if not teams:
            self.problem(top, "teams", "", "at least one team is needed")
            return None
        found = {}
        for name in teams:
            team = self.team(teams, str(name), shared)
            if team is not None:
                found[str(name)] = team
        return found

    def team(self, teams: dict[Any, Any], name: str,
             shared: Mapping[str, ChannelSpec]) -> TeamConfig | None:
        spec = self.mapping(teams, name, "teams")
        if spec is None:
            return None
        field = join_field("teams", name)
        self.keys(spec, field, ("description", "channels"))
        items = spec.get("channels")
        if not isinstance(items, list) or not items:
            self.problem(spec, "channels", field, "expected a non-empty list of channels")
            return None
        key = join_field(field, "channels")
        channels = [self.team_channel(items, index, key, shared) for index in range(len(items))]
        if any(channel is None for channel in channels):
            self.incomplete_teams.add(name)
        self.unique_channel_names(items, channels, key)
        return TeamConfig(name, str(spec.get("description", "")),
                          tuple(c for c in channels if c is not None))

    def unique_channel_names(self, items: list[Any], channels: list[ChannelSpec | None],
                             key: str) -> None:
        # A delivery is stored per (notification, channel name): two channels of one team
        # with one name could never both be sent to (nor told apart in the API).
        names = [channel.name if channel else None for channel in channels]
        for index, name in enumerate(names):
            if name is not None and name in names[:index]:
                self.problem(items, index, key, (
                    f"team has two channels named {name!r} (channels[{names.index(name)}] "
                    f"and channels[{index}]); give one a different `name:` (an inline "
                    f"channel is named after its type unless it says `name:`)"))

    def team_channel(self, items: list[Any], index: int, key: str,
                     shared: Mapping[str, ChannelSpec]) -> ChannelSpec | None:
        item = items[index]
        if isinstance(item, str):
            if item in self.broken_channels or self.channels_unreadable:
                return None  # its own problem is reported under channels:
            if item not in shared:
                self.problem(items, index, key, f"no channel named {item!r} under channels: "
                                                f"(defined: {', '.join(shared) or 'none'})")
            return shared.get(item)
        kind = item.get("type", "channel") if isinstance(item, dict) else "channel"
        return self.channel(items, index, key, str(kind))

    # rules ---------------------------------------------------------------------

    def rules(self, top: dict[Any, Any], teams: Mapping[str, TeamConfig] | None
              ) -> list[Rule] | None:
        items = top.get("rules", [])
        if not isinstance(items, list):
            self.problem(top, "rules", "", "expected a list of rules")
            return None
        rules = [self.rule(items, index, teams) for index in range(len(items))]
        seen: set[str] = set()
        for index, rule in enumerate(rules):
            if rule is not None and rule.name in seen:
                self.problem(items[index], "name", f"rules[{index}]",
                             f"rule name {rule.name!r} is used twice")
            seen.add(rule.name if rule else "")
        return [rule for rule in rules if rule is not None]

    def rule(self, items: list[Any], index: int,
             teams: Mapping[str, TeamConfig] | None) -> Rule | None:
        spec = self.mapping(items, index, "rules")
        if spec is None:
            return None
        key = f"rules[{index}]"
        self.keys(spec, key, _RULE_KEYS)
        name = spec.get("name")
        if not isinstance(name, str) or not name:
            self.problem(spec, "name", key, "every rule needs a name")
            return None
        self.rule_name = name
        try:
            return self.named_rule(name, spec, key, teams)
        finally:
            self.rule_name = None

    def named_rule(self, name: str, spec: dict[Any, Any], key: str,
                   teams: Mapping[str, TeamConfig] | None) -> Rule | None:
        before = self.count()
        team = spec.get("team")
        known = teams is not None and isinstance(team, str) and team in teams
        if teams is not None and not known:
            self.problem(spec, "team", key, f"unknown team {team!r} (teams: {', '.join(teams)})")
        level = spec.get("level")
        if level not in LEVELS:
            self.problem(spec, "level", key, f"expected one of {', '.join(LEVELS)}")
        elif teams is not None and known and team not in self.incomplete_teams:
            self.level_reaches_team(spec, key, teams[str(team)], level)
        severity = spec.get("severity", DEFAULT_SEVERITY.get(str(level), "warning"))
        if severity not in SEVERITIES:
            self.problem(spec, "severity", key, f"expected one of {', '.join(SEVERITIES)}")
        once_per = spec.get("once_per", "incident")
        if once_per not in _ONCE_PER:
            self.problem(spec, "once_per", key,
                         "expected incident, target_budget_window or window")
        conditions = self.conditions(spec, key)
        if self.count() > before or conditions is None or teams is None:
            return None
        return Rule(name, str(team), cast(Level, level), severity, str(spec.get("reason", name)),
                    conditions, once_per)

    def level_reaches_team(self, spec: dict[Any, Any], key: str, team: TeamConfig,
                           level: str) -> None:
        channels = team.channels
        if not any(level in channel.levels for channel in channels):
            self.problem(spec, "level", key, (
                f"no channel of team {team.name!r} takes {level} notifications (its "
                "channels: " + ", ".join(f"{c.name} [{'/'.join(sorted(c.levels))}]"
                                         for c in channels)
                + "); add one, or widen a channel's `levels:`"))

    def conditions(self, spec: dict[Any, Any], key: str) -> tuple[Condition, ...] | None:
        items = spec.get("when")
        if not isinstance(items, list) or not items:
            self.problem(spec, "when", key, "expected a non-empty list of conditions")
            return None
        field = join_field(key, "when")
        conditions = [self.condition(items, index, field) for index in range(len(items))]
        if any(condition is None for condition in conditions):
            return None
        return tuple(c for c in conditions if c is not None)

    def condition(self, items: list[Any], index: int, parent: str) -> Condition | None:
        spec = self.mapping(items, index, parent)
        if spec is None:
            return None
        key = join_field(parent, index)
        fact = spec.get("fact")
        kind = fact_kind(fact) if isinstance(fact, str) else None
        if not isinstance(fact, str) or kind is None:
            self.problem(spec, "fact", key, f"unknown fact {fact!r} (known: "
                                            f"{', '.join(sorted(FACTS))}, labels.<name>)")
            return None
        ops = [k for k in spec if k != "fact"]
        if len(ops) != 1 or ops[0] not in OPERATORS[kind]:
            self.problem(items, index, parent, (
                f"a {kind} fact takes exactly one of {', '.join(OPERATORS[kind])}, "
                f"got {', '.join(map(str, ops))}"))
            return None
        op = ops[0]
        before = self.count()
        operand = self.operand(kind, op, spec, key)
        return None if self.count() > before else Condition(fact, op, operand)

    def operand(self, kind: FactKind, op: str, spec: dict[Any, Any], parent: str) -> Any:
        value = spec[op]
        if kind == "duration":
            return self.duration(spec, op, parent)
        if kind == "count" and (not isinstance(value, int) or isinstance(value, bool)):
            self.problem(spec, op, parent, f"expected a whole number, got {value!r}")
        elif kind == "bool" and value is not None and not isinstance(value, bool):
            self.problem(spec, op, parent, f"expected true, false or null, got {value!r}")
        elif kind == "str" and op in ("in", "not_in"):
            if not isinstance(value, list) or not value:
                self.problem(spec, op, parent, "expected a non-empty list")
                return None
            field = join_field(parent, op)
            return frozenset(self.str_value(value, i, field) for i in range(len(value)))
        elif kind == "str":
            return self.str_value(spec, op, parent)
        return value

    def str_value(self, container: Any, key: object, parent: str) -> str | None:
        value = container[key]
        if isinstance(value, bool):
            # YAML 1.1 reads an unquoted yes/no/on/off/true/false as a boolean: `eq: yes`
            # would silently compare the label with 'True'.
            self.problem(container, key, parent, (
                f"YAML read this as the boolean {str(value).lower()} (an unquoted "
                "yes/no/on/off/true/false), but the fact is a string: quote it, e.g. "
                "'yes' or 'on'"))
        elif value is not None and not isinstance(value, (str, int, float)):
            self.problem(container, key, parent, f"expected a string, got {value!r}")
        return None if value is None else str(value)


def _complete(settings: Mapping[str, ValueRef | None]) -> dict[str, ValueRef]:
    return {name: ref for name, ref in settings.items() if ref is not None}
