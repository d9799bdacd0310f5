"""The playbook schema, checked by hand so each problem names file, line and field.

Top level (required: name, match, steps):

    name: model-load-failure            # [a-z0-9][a-z0-9_.-]*
    description: text
    match: {alertname: ModelLoadFailure}  # labels the alert must carry (non-empty)
    target: app-prod                    # optional: a declared target name or a template of
                                        #   alert/params; the run refuses any other target
    limits: {timeout: 10m, max_runs_per_hour: 3}
    escalation: {team: ml-team-lead, level: critical}   # default for escalations
    params: {model_file: best_model.pth}                # free values, `params.*`
    steps: [...]

Each step (required: id, action, phase):

    id: restore                 # [a-z_][a-z0-9_]*, unique: read as steps.restore.<output>
    action: docker.copy         # a name from the action catalogue
    phase: fix                  # diagnose | fix | validate, in that order; mutating only in fix
    with: {...}                 # the action's arguments; strings are templates
    when: "steps.classify.scenario == 'file_missing_or_corrupted'"   # an expression
    retries: 2                  # extra attempts after a failure (default 0)
    delay: 5s                   # between attempts
    timeout: 60s                # per attempt, enforced by the adapter
    on_failure: abort           # abort | continue | escalate
    escalate: {team: ..., level: ..., reason: ...}   # with on_failure: escalate
    idempotent: true            # mutating steps only: safe to re-run after a crash
    read_only: true             # docker.exec only: the command changes nothing
    description: text
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from remediator.core import defaults
from remediator.core._args import HTTP_METHODS
from remediator.core._schema import Checker, expect_str, join_field, suggest
from remediator.core._yaml import child_line, load_yaml_file
from remediator.core.actions import (
    ACTIONS,
    STEP_META_KEYS,
    ActionSpec,
    ArgKind,
    bounds_problems,
    mutates,
    normalize_args,
)
from remediator.core.alerts import ALERT_CONTEXT_KEYS
from remediator.core.escalation_channels import LEVELS
from remediator.core.playbook_model import (
    PHASE_ORDER,
    EscalationSpec,
    Limits,
    OnFailure,
    Phase,
    Playbook,
    Step,
)
from remediator.core.problems import Problem
from remediator.core.targets import TARGET_CONTEXT_KEYS, Target, selector_matches
from remediator.core.templates import (
    CONTEXT_ROOTS,
    TemplateInfo,
    inspect_expression,
    inspect_template,
    is_template,
)
from remediator.core.units import parse_duration
from remediator.errors import TemplateError

__all__ = ["check_playbook_data", "check_playbook_file", "check_playbook_set"]

_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]*")
_STEP_ID = re.compile(r"[a-z_][a-z0-9_]*")
_TOP_KEYS = ("name", "description", "match", "target", "limits", "escalation", "params",
             "steps")
_STEP_KEYS = ("id", "action", "phase", "with", "when", "retries", "delay", "timeout",
              "on_failure", "escalate", "idempotent", "read_only", "description")


@dataclass
class _Scope:
    """What templates at one place may refer to."""

    steps: dict[str, ActionSpec | None]  # None: the step's action is unknown (reported)
    later: set[str]
    params: set[str]
    roots: frozenset[str] = CONTEXT_ROOTS


@dataclass
class _State:
    """Running state while the steps of one playbook are checked."""

    checker: Checker
    params: set[str]
    targets: list[Target] | None
    teams: frozenset[str] | None = None
    seen: dict[str, ActionSpec | None] = field(default_factory=dict)
    all_ids: set[str] = field(default_factory=set)
    max_phase: Phase = Phase.DIAGNOSE


def check_playbook_file(
    path: Path, targets: Sequence[Target] | None = None, teams: Collection[str] | None = None,
) -> tuple[Playbook | None, list[Problem]]:
    """Load one file: the playbook (None if anything is wrong) and its problems."""
    data, problems = load_yaml_file(path)
    if problems:
        return None, problems
    return check_playbook_data(data, str(path), targets, teams)


def check_playbook_set(
    paths: Iterable[Path], targets: Sequence[Target] | None = None,
    teams: Collection[str] | None = None,
) -> tuple[list[Playbook], list[Problem]]:
    """Several files, plus the checks across them (duplicate names, identical match)."""
    playbooks: list[Playbook] = []
    problems: list[Problem] = []
    for path in paths:
        playbook, found = check_playbook_file(path, targets, teams)
        problems += found
        if playbook is not None:
            problems += _clashes(playbook, playbooks)
            playbooks.append(playbook)
    return playbooks, problems


def _clashes(playbook: Playbook, others: list[Playbook]) -> list[Problem]:
    found = []
    for other in others:
        if other.name == playbook.name:
            found.append(Problem(playbook.file or "", 1, "name",
                                 f"{playbook.name!r} is also the name of {other.file}"))
        if other.match == playbook.match:
            found.append(Problem(playbook.file or "", 1, "match",
                                 f"same match as {other.file}: an alert could not choose"))
    return found


def check_playbook_data(
    data: object, file: str, targets: Sequence[Target] | None = None,
    teams: Collection[str] | None = None,
) -> tuple[Playbook | None, list[Problem]]:
    """Check parsed YAML against the schema; the Playbook only when there is no problem.

    `targets` (from the config) and `teams` (from the escalation policy) are what literal
    target and team names are checked against; None skips that check.
    """
    checker = Checker(file)
    root = checker.mapping(data, "", 1)
    if root is None:
        return None, checker.problems
    checker.keys(root, "", _TOP_KEYS, ("name", "match", "steps"))
    name = checker.convert(root, "name", "", _playbook_name)
    match = checker.str_map(root, "match", "") if "match" in root else None
    params = _params(checker, root)
    state = _State(checker, set(params), list(targets) if targets is not None else None,
                   frozenset(teams) if teams is not None else None)
    target = _target(checker, root, state)
    steps = _steps(state, root, _candidate_targets(state, target, match or {}))
    playbook = Playbook(
        name=name or "", match=match or {}, steps=tuple(steps), target=target,
        limits=_limits(checker, root), escalation=_escalation(state, root, "escalation")
        or EscalationSpec(), params=params, description=str(root.get("description", "")),
        file=file,
    )
    return (None if checker.problems else playbook), checker.problems


def _playbook_name(value: object) -> str:
    text = expect_str(value)
    if not _NAME.fullmatch(text):
        raise ValueError(f"{text!r}: use lower case letters, digits, '-', '_' and '.'")
    return text


def _params(checker: Checker, root: dict[str, Any]) -> dict[str, Any]:
    if "params" not in root:
        return {}
    params = checker.mapping(root["params"], "params", child_line(root, "params"))
    return {str(key): _plain(value) for key, value in (params or {}).items()}


def _target(checker: Checker, root: dict[str, Any], state: _State) -> str | None:
    target = checker.string(root, "target", "")
    if target is None:
        return None
    line = child_line(root, "target")
    if is_template(target):
        scope = _Scope({}, set(), state.params, frozenset({"alert", "params"}))
        _check_template(checker, target, line, "target", scope)
    elif state.targets is not None and target not in {t.name for t in state.targets}:
        names = [t.name for t in state.targets]
        checker.add(line, "target", f"no target {target!r} in the config "
                    f"(declared: {', '.join(names) or 'none'}){suggest(target, names)}")
    return target


def _candidate_targets(state: _State, target: str | None, match: dict[str, str]) -> list[Target]:
    """The declared targets this playbook could run against, for static bounds checks."""
    if state.targets is None:
        return []
    if target is not None and not is_template(target):
        return [t for t in state.targets if t.name == target]
    # A target whose selector contradicts the playbook's match can never meet it.
    return [t for t in state.targets
            if selector_matches({k: v for k, v in t.selector.items() if k in match}, match)]


def _limits(checker: Checker, root: dict[str, Any]) -> Limits:
    if "limits" not in root:
        return Limits()
    raw = checker.mapping(root["limits"], "limits", child_line(root, "limits"))
    if raw is None:
        return Limits()
    checker.keys(raw, "limits", ("timeout", "max_runs_per_hour"))
    timeout = checker.convert(raw, "timeout", "limits", _positive_duration)
    runs = checker.convert(raw, "max_runs_per_hour", "limits", _positive_int)
    return Limits(timeout_s=timeout or defaults.DEFAULT_PLAYBOOK_TIMEOUT_S,
                  max_runs_per_hour=runs)


def _escalation(
    state: _State, container: dict[str, Any], key: str, parent: str = "",
    scope: _Scope | None = None,
) -> EscalationSpec | None:
    if key not in container:
        return None
    checker = state.checker
    field_name = join_field(parent, key)
    raw = checker.mapping(container[key], field_name, child_line(container, key))
    if raw is None:
        return None
    # The playbook-wide default has no reason: each escalation brings its own.
    allowed = ("team", "level") if key == "escalation" else ("team", "level", "reason")
    checker.keys(raw, field_name, allowed, ("team",))
    values = {name: checker.string(raw, name, field_name) for name in ("team", "level", "reason")}
    for name, value in values.items():
        if value is not None and is_template(value):
            scope = scope or _Scope({}, set(), set(), frozenset({"alert", "target", "params"}))
            _check_template(checker, value, child_line(raw, name), join_field(field_name, name),
                            scope)
    _check_team_and_level(state, raw, field_name)
    return EscalationSpec(team=values["team"] or defaults.DEFAULT_ESCALATION_TEAM,
                          level=values["level"] or defaults.DEFAULT_ESCALATION_LEVEL,
                          reason=values["reason"])


def _steps(state: _State, root: dict[str, Any], targets: list[Target]) -> list[Step]:
    items = root.get("steps")
    if "steps" not in root:
        return []
    if not isinstance(items, list) or not items:
        state.checker.at(root, "steps", "", "expected a non-empty list of steps")
        return []
    state.all_ids = {item["id"] for item in items
                     if isinstance(item, dict) and isinstance(item.get("id"), str)}
    steps = []
    for index, item in enumerate(items):
        step = _step(state, items, index, item, targets)
        if step is not None:
            steps.append(step)
    return steps


def _step(
    state: _State, items: list[Any], index: int, item: object, targets: list[Target],
) -> Step | None:
    checker, field_name = state.checker, join_field("steps", index)
    raw = checker.mapping(item, field_name, child_line(items, index))
    if raw is None:
        return None
    checker.keys(raw, field_name, _STEP_KEYS, ("id", "action", "phase"))
    step_id = _step_id(state, raw, field_name)
    spec = _action(checker, raw, field_name)
    phase = _phase(state, raw, field_name, spec)
    scope = _Scope(dict(state.seen), state.all_ids - set(state.seen), state.params)
    when = _when(checker, raw, field_name, scope)
    args = _args(state, raw, field_name, spec, scope, targets)
    options = _options(state, raw, field_name, spec, step_id, scope)
    if step_id is not None:
        state.seen.setdefault(step_id, spec)
    if step_id is None or spec is None or phase is None:
        return None
    return Step(id=step_id, action=spec.name, phase=phase, args=args, when=when,
                description=str(raw.get("description", "")), line=child_line(items, index),
                **options)


def _step_id(state: _State, raw: dict[str, Any], parent: str) -> str | None:
    step_id = state.checker.string(raw, "id", parent)
    if step_id is None:
        return None
    if not _STEP_ID.fullmatch(step_id):
        state.checker.at(raw, "id", parent, f"{step_id!r}: use lower case letters, digits and "
                         "underscores (it is read as steps.<id> in templates)")
        return None
    if step_id in state.seen:
        state.checker.at(raw, "id", parent, f"duplicate step id {step_id!r}")
    return step_id


def _action(checker: Checker, raw: dict[str, Any], parent: str) -> ActionSpec | None:
    name = checker.string(raw, "action", parent)
    if name is None:
        return None
    spec = ACTIONS.get(name)
    if spec is None:
        checker.at(raw, "action", parent, f"unknown action {name!r}{suggest(name, ACTIONS)}; "
                   f"known: {', '.join(ACTIONS)}")
    return spec


def _phase(
    state: _State, raw: dict[str, Any], parent: str, spec: ActionSpec | None,
) -> Phase | None:
    value = raw.get("phase")
    if "phase" not in raw:
        return None
    if value not in [p.value for p in Phase]:
        state.checker.at(raw, "phase", parent, f"expected diagnose, fix or validate, got {value!r}")
        return None
    phase = Phase(value)
    if PHASE_ORDER[phase] < PHASE_ORDER[state.max_phase]:
        state.checker.at(raw, "phase", parent, f"a {phase} step after a {state.max_phase} step: "
                         "order the steps diagnose, then fix, then validate")
    state.max_phase = max(state.max_phase, phase, key=PHASE_ORDER.__getitem__)
    read_only = raw.get("read_only") is True
    args = _raw_with(raw)
    method = args.get("method", "GET")
    known = method in HTTP_METHODS or is_template(method)  # a bad method is reported apart
    if known and spec is not None and mutates(spec, args, read_only) and (
            phase is not Phase.FIX):
        what = spec.name if spec.mutating else f"{spec.name} with method: {args.get('method')}"
        hint = (f" (or mark a harmless {spec.name} read_only: true)"
                if spec.read_only_allowed else "")
        state.checker.at(raw, "phase", parent, f"{what} changes the target, so it belongs "
                         f"in phase: fix{hint}")
    return phase


def _when(checker: Checker, raw: dict[str, Any], parent: str, scope: _Scope) -> str | None:
    if "when" not in raw:
        return None
    value = raw["when"]
    if isinstance(value, bool):
        return "true" if value else "false"
    if not isinstance(value, str) or not value.strip():
        checker.at(raw, "when", parent, "expected an expression, e.g. \"steps.x.exit_code == 0\"")
        return None
    _check_expression(checker, value, child_line(raw, "when"), join_field(parent, "when"), scope)
    return value


def _args(
    state: _State, raw: dict[str, Any], parent: str, spec: ActionSpec | None, scope: _Scope,
    targets: list[Target],
) -> dict[str, Any]:
    checker, field_name = state.checker, join_field(parent, "with")
    given = checker.mapping(raw.get("with", {}), field_name, child_line(raw, "with"))
    if given is None or spec is None:
        return {}
    args, problems = normalize_args(spec, given, static=True)
    for arg, message in problems:
        checker.add(child_line(given, arg, child_line(raw, "with")),
                    join_field(field_name, arg) if arg else field_name, message)
    for target in targets:
        for arg, message in bounds_problems(spec.name, args, target):
            checker.add(child_line(given, arg.split(".")[0]), join_field(field_name, arg), message)
    _check_arg_templates(checker, spec, given, field_name, scope)
    _check_http_budget(checker, raw, spec, args, parent)
    if spec.name == "notify":
        _check_team_and_level(state, given, field_name)
    return _plain(given)


def _check_arg_templates(
    checker: Checker, spec: ActionSpec, given: dict[str, Any], parent: str, scope: _Scope,
) -> None:
    for name, value in given.items():
        arg = spec.arg(str(name))
        line, field_name = child_line(given, name), join_field(parent, name)
        if arg is not None and not arg.rendered:
            if isinstance(value, str) and arg.kind is ArgKind.EXPRESSION:
                _check_expression(checker, value, line, field_name, scope, syntax=False)
            continue
        for source in _strings(value):
            if is_template(source):
                _check_template(checker, source, line, field_name, scope)


def _check_http_budget(
    checker: Checker, raw: dict[str, Any], spec: ActionSpec, args: dict[str, Any], parent: str,
) -> None:
    """An http.check whose retries outlast its step timeout would time out, never fail clean."""
    if spec.name != "http.check":
        return
    retries, interval = args.get("retries"), args.get("interval")
    timeout = _safe_duration(raw.get("timeout", defaults.DEFAULT_STEP_TIMEOUT_S))
    if isinstance(retries, int) and isinstance(interval, float) and timeout is not None:
        needed = retries * interval
        if needed > timeout:
            checker.at(raw, "timeout" if "timeout" in raw else "with", parent,
                       f"retries x interval is {needed:g}s but the step timeout is {timeout:g}s: "
                       "raise the step's timeout")


def _options(
    state: _State, raw: dict[str, Any], parent: str, spec: ActionSpec | None,
    step_id: str | None, scope: _Scope,
) -> dict[str, Any]:
    checker = state.checker
    options: dict[str, Any] = {}
    for key, (name, parse) in _OPTION_PARSERS.items():
        value = checker.convert(raw, key, parent, parse)
        if value is not None:
            options[name] = value
    own = _Scope({**scope.steps, **({step_id: spec} if step_id and spec else {})}, scope.later,
                 scope.params)
    escalate = _escalation(state, raw, "escalate", parent, own)
    if escalate is not None:
        options["escalate"] = escalate
    _check_option_fit(checker, raw, parent, spec, options)
    return options


def _check_team_and_level(state: _State, raw: dict[str, Any], parent: str) -> None:
    """Literal team and level names must exist in the escalation policy (templates: later)."""
    team, level = raw.get("team"), raw.get("level")
    if state.teams is not None and isinstance(team, str) and not is_template(team) \
            and team not in state.teams:
        known = sorted(state.teams)
        state.checker.at(raw, "team", parent, f"no team {team!r} in the escalation policy "
                         f"(teams: {', '.join(known)}){suggest(team, known)}")
    if isinstance(level, str) and not is_template(level) and level not in LEVELS:
        state.checker.at(raw, "level", parent, f"expected one of {', '.join(LEVELS)}, got "
                         f"{level!r}")


def _check_option_fit(
    checker: Checker, raw: dict[str, Any], parent: str, spec: ActionSpec | None,
    options: dict[str, Any],
) -> None:
    if "escalate" in raw and options.get("on_failure") is not OnFailure.ESCALATE:
        checker.at(raw, "escalate", parent, "only used with on_failure: escalate")
    if spec is None:
        return
    if options.get("read_only") and not spec.read_only_allowed:
        checker.at(raw, "read_only", parent, f"only docker.exec and http.check can be marked "
                   f"read_only; {spec.name} is {'always' if spec.mutating else 'never'} "
                   "mutating")
    args = _raw_with(raw)
    mutating = mutates(spec, args, bool(options.get("read_only")))
    if "idempotent" in raw and not mutating:
        checker.at(raw, "idempotent", parent, "only meaningful on a mutating step (it says "
                   "whether re-running it after a crash is safe)")


def _raw_with(raw: dict[str, Any]) -> dict[str, Any]:
    """The step's `with:` as written (empty when missing or not a mapping: reported apart)."""
    value = raw.get("with")
    return value if isinstance(value, dict) else {}


def _check_template(
    checker: Checker, source: str, line: int, field_name: str, scope: _Scope,
) -> None:
    try:
        info = inspect_template(source)
    except TemplateError as exc:
        checker.add(line, field_name, str(exc))
        return
    _check_info(checker, info, line, field_name, scope)


def _check_expression(
    checker: Checker, source: str, line: int, field_name: str, scope: _Scope, syntax: bool = True,
) -> None:
    try:
        info = inspect_expression(source)
    except TemplateError as exc:
        if syntax:  # an EXPRESSION argument's syntax was already reported by normalize_args
            checker.add(line, field_name, str(exc))
        return
    _check_info(checker, info, line, field_name, scope)


def _check_info(
    checker: Checker, info: TemplateInfo, line: int, field_name: str, scope: _Scope,
) -> None:
    messages: list[str] = []
    messages += [f"access to private attribute {name!r} is refused by the sandbox"
                 for name in info.private]
    messages += [f"unknown variable {name!r} (templates here see "
                 f"{', '.join(sorted(scope.roots))}){suggest(name, scope.roots)}"
                 for name in sorted(info.variables - scope.roots)]
    for chain in info.chains:
        message = _check_chain(chain, scope)
        if message:
            messages.append(message)
    for message in dict.fromkeys(messages):  # each message once, in order
        checker.add(line, field_name, message)


def _check_chain(chain: tuple[str, ...], scope: _Scope) -> str | None:
    root, rest = chain[0], chain[1:]
    if not rest or root not in scope.roots:
        return None
    if root == "steps":
        return _check_step_ref(rest, scope)
    known = {"alert": ALERT_CONTEXT_KEYS, "target": TARGET_CONTEXT_KEYS,
             "params": frozenset(scope.params)}.get(root)
    if known is not None and rest[0] not in known:
        return f"{root} has no field {rest[0]!r}{suggest(rest[0], known)}"
    return None


def _check_step_ref(rest: tuple[str, ...], scope: _Scope) -> str | None:
    step_id = rest[0]
    if step_id not in scope.steps:
        if step_id in scope.later:
            return f"steps.{step_id} is not an earlier step: a step only sees steps before it"
        return f"no earlier step {step_id!r}{suggest(step_id, scope.steps)}"
    spec = scope.steps[step_id]
    if spec is not None and len(rest) > 1 and rest[1] not in (*STEP_META_KEYS, *spec.outputs):
        fields = ", ".join((*STEP_META_KEYS, *spec.outputs))
        return f"steps.{step_id} ({spec.name}) has no output {rest[1]!r}; it has: {fields}"
    return None


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)


def _plain(value: Any) -> Any:
    """LineDict/LineList back to dict/list: the model holds plain data."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def _positive_duration(value: object) -> float:
    seconds = parse_duration(value)
    if seconds <= 0:
        raise ValueError(f"expected a duration above zero, got {value!r}")
    return seconds


def _safe_duration(value: object) -> float | None:
    try:
        return parse_duration(value)
    except ValueError:
        return None


def _positive_int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"expected a positive integer, got {value!r}")
    return value


def _retries(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"expected a whole number of extra attempts, got {value!r}")
    if value > defaults.MAX_STEP_RETRIES:
        raise ValueError(f"at most {defaults.MAX_STEP_RETRIES} retries")
    return value


def _on_failure(value: object) -> OnFailure:
    if value not in [o.value for o in OnFailure]:
        raise ValueError(f"expected abort, continue or escalate, got {value!r}")
    return OnFailure(str(value))


def _bool(value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {value!r}")
    return value


# step key -> (Step field, parser)
_OPTION_PARSERS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "retries": ("retries", _retries),
    "delay": ("delay_s", parse_duration),
    "timeout": ("timeout_s", _positive_duration),
    "on_failure": ("on_failure", _on_failure),
    "idempotent": ("idempotent", _bool),
    "read_only": ("read_only", _bool),
}
