"""The action catalogue: every action a playbook step can name, what it takes and returns.

The catalogue is what lets `remediator validate` check a playbook without Docker: names,
whether an action mutates the target, its arguments (kinds, required, defaults) and the
outputs later steps may read as `steps.<id>.<output>`. Adapters implement the non-core
actions through `Runtime.call`; the core implements `diagnose.classify`, `wait`, `assert`
and `notify` itself.

Arguments reach `Runtime.call` normalised: defaults filled in, durations as float seconds,
sizes as int bytes, argv as a list of strings.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from remediator.core import defaults
from remediator.core._args import ArgKind, coerce
from remediator.core.targets import Target, check_bounds

__all__ = [
    "ACTIONS",
    "STEP_META_KEYS",
    "ActionSpec",
    "ArgKind",
    "ArgSpec",
    "bounds_problems",
    "get_action",
    "judge_outputs",
    "mutates",
    "normalize_args",
]

STEP_META_KEYS = ("status", "error", "attempts", "duration_s")
"""Keys every `steps.<id>` has besides the action's outputs (they win over an output)."""


@dataclass(frozen=True)
class ArgSpec:
    """One argument of an action."""

    name: str
    kind: ArgKind
    required: bool = False
    default: Any = None
    doc: str = ""

    @property
    def rendered(self) -> bool:
        """Whether the runner renders this argument as a template (expressions/rules: no)."""
        return self.kind not in (ArgKind.EXPRESSION, ArgKind.RULES)


@dataclass(frozen=True)
class ActionSpec:
    """One action: name, whether it changes the target, arguments and outputs."""

    name: str
    mutating: bool
    args: tuple[ArgSpec, ...]
    outputs: tuple[str, ...]
    doc: str
    core: bool = False
    read_only_allowed: bool = False
    check: Callable[[Mapping[str, Any]], list[tuple[str, str]]] | None = None

    def arg(self, name: str) -> ArgSpec | None:
        """The argument called `name`, if the action has one."""
        return next((arg for arg in self.args if arg.name == name), None)


def _one_of(*names: str) -> Callable[[Mapping[str, Any]], list[tuple[str, str]]]:
    def check(args: Mapping[str, Any]) -> list[tuple[str, str]]:
        if any(name in args for name in names):
            return []
        return [("", f"give at least one of {', '.join(names)}")]
    return check


def _recreate_check(args: Mapping[str, Any]) -> list[tuple[str, str]]:
    if args.get("image") and args.get("last_known_good") is True:
        return [("image", "give image or last_known_good: true, not both")]
    return []


def _put_file_check(args: Mapping[str, Any]) -> list[tuple[str, str]]:
    sources = ["content" in args, args.get("last_known_good") is True,
               args.get("from_image") is True]
    if sources.count(True) != 1:
        return [("content", "give content, last_known_good: true or from_image: true "
                            "(exactly one)")]
    return []


def _http_check(args: Mapping[str, Any]) -> list[tuple[str, str]]:
    if "body" in args and args.get("method", "GET") != "POST":
        return [("body", "a body needs method: POST")]
    return []


_OUT = "output"  # every action has a human-readable `output` (text, what happened)

_CATALOGUE = (
    ActionSpec(
        "docker.inspect", False, (),
        (_OUT, "running", "container_status", "exit_code", "oom_killed", "restart_count",
         "health", "image", "image_id", "memory_limit", "memory_swap", "cpus", "env",
         "started_at", "state_error"),
        "The container's state (docker inspect): OOMKilled, exit code, health, limits.",
    ),
    ActionSpec(
        "docker.logs", False,
        (ArgSpec("since", ArgKind.DURATION, doc="only lines newer than this"),
         ArgSpec("tail", ArgKind.INTEGER, doc="only the last N lines"),
         ArgSpec("grep", ArgKind.REGEX, doc="keep lines matching (case-insensitive)")),
        (_OUT, "lines", "total_lines"),
        "The container's recent log lines (docker logs --since/--tail, then grep -iE).",
    ),
    ActionSpec(
        "docker.exec", True,
        (ArgSpec("cmd", ArgKind.ARGV, required=True, doc="argv list, never a shell string"),
         ArgSpec("user", ArgKind.STRING, doc="run as this user (e.g. root)"),
         ArgSpec("workdir", ArgKind.PATH),
         ArgSpec("env", ArgKind.STRING_MAP),
         ArgSpec("timeout", ArgKind.DURATION, doc="the command's own limit"),
         ArgSpec("check", ArgKind.BOOLEAN, default=True, doc="fail on a non-zero exit")),
        (_OUT, "stdout", "stderr", "exit_code", "data"),
        "Run a command in the container. Mutating unless the step says read_only: true. "
        "`data` is stdout parsed as JSON when it is a JSON object or list (else none).",
        read_only_allowed=True,
    ),
    ActionSpec(
        "docker.stats", False, (),
        (_OUT, "memory_usage", "memory_limit", "memory_percent", "cpu_percent"),
        "One sample of the container's resource use (docker stats --no-stream).",
    ),
    ActionSpec(
        "docker.restart", True,
        (ArgSpec("stop_timeout", ArgKind.DURATION, doc="grace period before SIGKILL"),),
        (_OUT, "started_at"),
        "Restart the container.",
    ),
    ActionSpec(
        "docker.update", True,
        (ArgSpec("memory", ArgKind.SIZE), ArgSpec("memory_swap", ArgKind.SWAP),
         ArgSpec("cpus", ArgKind.NUMBER),
         ArgSpec("memory_reservation", ArgKind.SIZE,
                 doc="soft limit (docker --memory-reservation), at most memory")),
        (_OUT, "memory", "memory_swap", "cpus", "memory_reservation"),
        "Change the container's memory/CPU limits, within the target's bounds.",
        check=_one_of("memory", "memory_swap", "cpus", "memory_reservation"),
    ),
    ActionSpec(
        "docker.recreate", True,
        (ArgSpec("env", ArgKind.STRING_MAP, doc="environment overrides"),
         ArgSpec("image", ArgKind.STRING),
         ArgSpec("config", ArgKind.RESOURCES, doc="memory/memory_swap/cpus"),
         ArgSpec("last_known_good", ArgKind.BOOLEAN, default=False,
                 doc="use the target's last-known-good image and config")),
        (_OUT, "container_id", "image"),
        "Replace the container with the same settings plus these overrides.",
        check=_recreate_check,
    ),
    ActionSpec(
        "docker.copy", True,
        (ArgSpec("src", ArgKind.PATH, required=True),
         ArgSpec("dest", ArgKind.PATH, required=True)),
        (_OUT, "bytes"),
        "Copy a file inside the container (e.g. restore a model from the backup path).",
    ),
    ActionSpec(
        "docker.read_file", False,
        (ArgSpec("path", ArgKind.PATH, required=True),),
        (_OUT, "exists", "content", "bytes", "mode", "uid", "gid"),
        "Read a file from the container (docker cp out; works on a stopped container).",
    ),
    ActionSpec(
        "docker.put_file", True,
        (ArgSpec("path", ArgKind.PATH, required=True),
         ArgSpec("content", ArgKind.STRING, doc="the file's new text"),
         ArgSpec("last_known_good", ArgKind.BOOLEAN, default=False,
                 doc="write the text recorded for this path with the last-known-good"),
         ArgSpec("from_image", ArgKind.BOOLEAN, default=False,
                 doc="write the copy of this path that the container's image ships"),
         ArgSpec("mode", ArgKind.FILE_MODE, doc="e.g. '0644'; default: the file's current mode"),
         ArgSpec("owner", ArgKind.OWNER, doc="uid:gid; default: the file's current owner")),
        (_OUT, "bytes", "previous_bytes"),
        "Write a file in the container (docker cp in), e.g. restore a config file.",
        check=_put_file_check,
    ),
    ActionSpec(
        "http.check", False,
        (ArgSpec("path", ArgKind.URL_PATH, required=True),
         ArgSpec("method", ArgKind.METHOD, default="GET"),
         ArgSpec("body", ArgKind.JSON, doc="JSON body for POST"),
         ArgSpec("expect_status", ArgKind.INTEGER, default=200),
         ArgSpec("expect", ArgKind.JSON, doc="a JSON subset the response body must contain"),
         ArgSpec("retries", ArgKind.INTEGER, default=0),
         ArgSpec("interval", ArgKind.DURATION, default=defaults.DEFAULT_HTTP_CHECK_INTERVAL_S)),
        (_OUT, "status_code", "body", "ok"),
        "Request the target's base_url + path until the expectation holds or retries run out. "
        "A method other than GET/HEAD (e.g. POST /model/reload) counts as changing the "
        "target unless the step says read_only: true (e.g. a test inference).",
        check=_http_check, read_only_allowed=True,
    ),
    ActionSpec(
        "prometheus.query", False,
        (ArgSpec("query", ArgKind.STRING, required=True),),
        (_OUT, "value", "result"),
        "An instant PromQL query; `value` is the first sample's value (None if empty).",
    ),
    ActionSpec(
        "diagnose.classify", False,
        (ArgSpec("text", ArgKind.TEXT, doc="text to search, e.g. steps.logs.output"),
         ArgSpec("state", ArgKind.MAPPING, doc="values for the rules' state conditions"),
         ArgSpec("rules", ArgKind.RULES, required=True),
         ArgSpec("default", ArgKind.STRING, doc="scenario when no rule matches"),
         ArgSpec("ignore_case", ArgKind.BOOLEAN, default=True)),
        (_OUT, "scenario", "matched", "rule"),
        "First matching rule -> scenario name (the runbook's error patterns).",
        core=True,
    ),
    ActionSpec(
        "wait", False, (ArgSpec("duration", ArgKind.DURATION, required=True),),
        (_OUT, "waited_s"), "Pause (e.g. let a restarted service settle).", core=True,
    ),
    ActionSpec(
        "assert", False,
        (ArgSpec("that", ArgKind.EXPRESSION, required=True),
         ArgSpec("message", ArgKind.STRING)),
        (_OUT, "value"), "Fail the step unless the expression is true.", core=True,
    ),
    ActionSpec(
        "notify", False,
        (ArgSpec("team", ArgKind.STRING, required=True),
         ArgSpec("level", ArgKind.LEVEL, default=defaults.DEFAULT_ESCALATION_LEVEL),
         ArgSpec("reason", ArgKind.STRING, required=True)),
        (_OUT, "team", "level", "reason"),
        "Record an escalation request on the execution (delivered by the service).",
        core=True,
    ),
)

ACTIONS: Mapping[str, ActionSpec] = {spec.name: spec for spec in _CATALOGUE}
"""The catalogue, by action name."""


SAFE_METHODS = ("GET", "HEAD")
"""HTTP methods an http.check may use without counting as a change to the target."""


def mutates(spec: ActionSpec, args: Mapping[str, Any], read_only: bool = False) -> bool:
    """Whether a step may change the target (fix phase only; skipped in dry runs).

    The action's own flag, except that a read_only step (docker.exec, http.check) declares
    itself harmless, and an http.check with a method other than GET/HEAD changes things
    (a method given as a template counts as changing: it is not known until run time).
    """
    if read_only:
        return False
    if spec.name == "http.check":
        method = args.get("method", "GET")
        return not (isinstance(method, str) and method in SAFE_METHODS)
    return spec.mutating


def get_action(name: str) -> ActionSpec | None:
    """The catalogue entry for `name`, if there is one."""
    return ACTIONS.get(name)


def normalize_args(
    spec: ActionSpec, raw: Mapping[str, Any], *, static: bool = False,
) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Check `raw` against the spec: (normalised args with defaults, [(arg, message)]).

    With static=True template strings are accepted as they are (validate time).
    """
    args: dict[str, Any] = {}
    problems: list[tuple[str, str]] = []
    for name, value in raw.items():
        arg = spec.arg(str(name))
        if arg is None:
            known = ", ".join(a.name for a in spec.args) or "none"
            problems.append((str(name), f"unknown argument for {spec.name} (known: {known})"))
            continue
        try:
            args[arg.name] = coerce(arg.kind, value, static=static)
        except ValueError as exc:
            problems.append((arg.name, str(exc)))
    problems += _missing_and_defaults(spec, args, given=set(map(str, raw)))
    if spec.check is not None and not problems:
        problems += spec.check(args)
    return args, problems


def _missing_and_defaults(
    spec: ActionSpec, args: dict[str, Any], given: set[str],
) -> list[tuple[str, str]]:
    """Fill defaults in; report required arguments not given (invalid ones are reported)."""
    problems = []
    for arg in spec.args:
        if arg.name in given:
            continue
        if arg.required:
            problems.append((arg.name, f"is required by {spec.name}"))
        elif arg.default is not None:
            args[arg.name] = arg.default
    return problems


def bounds_problems(action: str, args: Mapping[str, Any], target: Target) -> list[tuple[str, str]]:
    """Resource arguments outside the target's bounds; template values are skipped."""
    if action == "docker.update":
        values, prefix = args, ""
    elif action == "docker.recreate" and isinstance(args.get("config"), dict):
        values, prefix = args["config"], "config."
    else:
        return []
    known = {key: value for key, value in values.items()
             if key in ("memory", "memory_swap", "cpus") and not isinstance(value, str)}
    problems = check_bounds(target, **known)
    reservation = values.get("memory_reservation")
    if isinstance(reservation, int) and not isinstance(reservation, bool):
        limit = known.get("memory")
        if target.max_memory is None or reservation > target.max_memory:
            problems += [("memory_reservation", f"{reservation} bytes exceeds the target's "
                          f"max_memory ({target.max_memory})")]
        elif isinstance(limit, int) and reservation > limit:
            problems += [("memory_reservation", "must be at most memory (a reservation is "
                          "a soft limit below the hard one)")]
    return [(prefix + arg, message) for arg, message in problems]


def judge_outputs(action: str, args: Mapping[str, Any], outputs: Mapping[str, Any]) -> str | None:
    """Why these outputs mean the action failed, or None when they do not.

    Adapters either raise ActionFailed or return outputs with `ok: false` (keeping the
    evidence, e.g. the last HTTP body). A docker.exec with `check` fails on a non-zero exit.
    """
    if outputs.get("ok") is False:
        return str(outputs.get("output") or f"{action} reported failure")
    code = outputs.get("exit_code")
    if action == "docker.exec" and args.get("check", True) and code not in (0, None):
        stderr = str(outputs.get("stderr") or outputs.get("output") or "").strip()
        return f"command exited with status {code}" + (f": {stderr[-300:]}" if stderr else "")
    return None
