"""diagnose.classify: map what the diagnose steps saw to one of the runbook's scenarios.

A table of rules, tried in order, first match wins (so put the most telling first):
`{pattern: REGEX, scenario: NAME}` searches the text (log lines), and
`{state: {KEY: VALUE}, scenario: NAME}` matches when every KEY of the `state` argument
equals VALUE (e.g. `{oom_killed: true}` from docker.inspect).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["classify"]


def classify(args: Mapping[str, Any]) -> dict[str, Any]:
    """Outputs of diagnose.classify for normalised args (text, state, rules, default...)."""
    text = str(args.get("text") or "")
    state = args.get("state") or {}
    flags = re.IGNORECASE if args.get("ignore_case", True) else 0
    for index, rule in enumerate(args["rules"]):
        matched = _match(rule, text, state, flags)
        if matched is not None:
            scenario = rule["scenario"]
            return {"scenario": scenario, "matched": matched, "rule": index,
                    "output": f"{scenario} (rule {index}: {matched[:200]})"}
    default = args.get("default")
    return {"scenario": default, "matched": None, "rule": None,
            "output": f"no rule matched; scenario {default!r}"}


def _match(rule: Mapping[str, Any], text: str, state: Mapping[str, Any], flags: int) -> str | None:
    if "pattern" in rule:
        found = re.search(rule["pattern"], text, flags)
        return _line_of(text, found.start()) if found else None
    wanted: Mapping[str, Any] = rule["state"]
    if all(_equal(state.get(key), value) for key, value in wanted.items()):
        return ", ".join(f"{key}={value}" for key, value in wanted.items())
    return None


def _equal(actual: Any, expected: Any) -> bool:
    # State values rendered through a mixed template arrive as strings ("True", "137").
    return actual == expected or str(actual).lower() == str(expected).lower()


def _line_of(text: str, position: int) -> str:
    """The whole log line holding the match: more useful evidence than the match alone."""
    start = text.rfind("\n", 0, position) + 1
    end = text.find("\n", position)
    return text[start:] if end == -1 else text[start:end]
