"""Argument kinds of the action catalogue, and how a value of each kind is checked.

`coerce(kind, value)` returns the normalised value (durations in seconds, sizes in bytes,
argv as a list of strings) or raises ValueError with a message for the user. With
`static=True` (at `remediator validate` time) template strings are left alone: their
type is only known once rendered, when the runner coerces again.
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Callable
from enum import StrEnum
from typing import Any

from remediator.core._yaml import type_name
from remediator.core.escalation_channels import LEVELS
from remediator.core.templates import inspect_expression, is_template
from remediator.core.units import parse_duration, parse_size
from remediator.errors import TemplateError

__all__ = ["HTTP_METHODS", "ArgKind", "coerce"]


class ArgKind(StrEnum):
    """The type of an action argument, as the catalogue declares it."""

    STRING = "string"          # a string (numbers are turned into strings)
    TEXT = "text"              # a string, or a list of strings joined by newlines
    INTEGER = "integer"        # a non-negative integer
    NUMBER = "number"          # a non-negative number
    BOOLEAN = "boolean"        # true / false
    DURATION = "duration"      # "30s", "10m", or seconds -> float seconds
    SIZE = "size"              # "512m", "4g", or bytes -> int bytes
    SWAP = "swap"              # a size, or -1 for unlimited swap
    ARGV = "argv"              # a YAML list: one argv element per item, never a shell string
    STRING_MAP = "string_map"  # a mapping of strings (environment variables)
    JSON = "json"              # any JSON value
    MAPPING = "mapping"        # a JSON object
    EXPRESSION = "expression"  # a sandboxed expression, evaluated by the core, never rendered
    REGEX = "regex"            # a Python regular expression
    RULES = "rules"            # diagnose.classify's table, taken literally (never rendered)
    URL_PATH = "url_path"      # "/health": a path on the target's base URL, never a full URL
    PATH = "path"              # an absolute path inside the target container
    RESOURCES = "resources"    # {memory, memory_swap, cpus}, checked against target bounds
    METHOD = "method"          # an HTTP method: GET, HEAD or POST
    LEVEL = "level"            # an escalation level of config/escalation.yml: notify or page
    FILE_MODE = "file_mode"    # permission bits in octal, "0644" or "644" -> int
    OWNER = "owner"            # numeric "uid:gid" (what the container's files record)


def coerce(kind: ArgKind, value: Any, *, static: bool = False) -> Any:
    """The normalised value of an argument of this kind (ValueError if it is not one)."""
    if static and is_template(value):
        return value
    return _COERCERS[kind](value, static)


def _string(value: Any, static: bool) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise ValueError(f"expected a string, got {_show(value)}")


def _text(value: Any, static: bool) -> str:
    if value is None:
        return ""  # the output of a step that did not run
    if isinstance(value, list):
        return "\n".join(_text(item, static) for item in value)
    return _string(value, static)


def _integer(value: Any, static: bool) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"expected a non-negative integer, got {_show(value)}")
    return value


def _number(value: Any, static: bool) -> float:
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = float(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"expected a non-negative number, got {_show(value)}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"expected a non-negative number, got {_show(value)}")
    return float(value)


def _boolean(value: Any, static: bool) -> bool:
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {_show(value)}")
    return value


def _swap(value: Any, static: bool) -> int:
    if value == -1 or value == "-1":
        return -1
    return parse_size(value)


def _argv(value: Any, static: bool) -> list[str]:
    if not isinstance(value, list):
        raise ValueError("expected a YAML list, one argument per item (an argv, e.g. "
                         "[ls, -la, /app/models]); commands never go through a shell")
    if not value:
        raise ValueError("expected at least the program to run")
    if static and isinstance(value[0], str) and " " in value[0].strip():
        raise ValueError(f"the program name {value[0]!r} contains a space: write each "
                         "argument as its own list item")
    return [item if static and is_template(item) else _argv_item(index, item)
            for index, item in enumerate(value)]


def _argv_item(index: int, item: Any) -> str:
    if isinstance(item, bool) or not isinstance(item, str | int | float):
        raise ValueError(f"item {index}: expected a string, got {_show(item)}")
    return str(item)


def _string_map(value: Any, static: bool) -> dict[str, str]:
    if not isinstance(value, dict):
        raise ValueError(f"expected a mapping of strings, got {_show(value)}")
    result: dict[str, str] = {}
    for key, item in value.items():
        if not isinstance(key, str):
            raise ValueError(f"key {key!r}: expected a string")
        result[key] = item if static and is_template(item) else _string(item, static)
    return result


def _json(value: Any, static: bool) -> Any:
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, list):
        return [_json(item, static) for item in value]
    if isinstance(value, dict) and all(isinstance(key, str) for key in value):
        return {key: _json(item, static) for key, item in value.items()}
    raise ValueError(f"expected a JSON value, got {_show(value)}")


def _mapping(value: Any, static: bool) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"expected a mapping, got {_show(value)}")
    result: dict[str, Any] = _json(value, static)
    return result


def _expression(value: Any, static: bool) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"expected an expression like \"steps.x.exit_code == 0\", got "
                         f"{_show(value)}")
    try:
        inspect_expression(value)
    except TemplateError as exc:
        raise ValueError(str(exc)) from None
    return value


def _regex(value: Any, static: bool) -> str:
    text = _string(value, static)
    try:
        re.compile(text)
    except re.error as exc:
        raise ValueError(f"invalid regular expression {text!r}: {exc}") from None
    return text


def _rules(value: Any, static: bool) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not value:
        raise ValueError("expected a non-empty list of {pattern: REGEX, scenario: NAME} or "
                         "{state: {KEY: VALUE}, scenario: NAME}")
    return [_rule(index, item) for index, item in enumerate(value)]


def _rule(index: int, item: Any) -> dict[str, Any]:
    if not isinstance(item, dict) or set(item) - {"pattern", "state", "scenario", "description"}:
        raise ValueError(f"rule {index}: expected keys pattern or state, scenario "
                         "(and optional description)")
    if ("pattern" in item) == ("state" in item):
        raise ValueError(f"rule {index}: give exactly one of pattern or state")
    if not isinstance(item.get("scenario"), str) or not item["scenario"]:
        raise ValueError(f"rule {index}: scenario must be a non-empty string")
    rule: dict[str, Any] = {"scenario": item["scenario"]}
    try:
        if "pattern" in item:
            rule["pattern"] = _regex(item["pattern"], True)
        else:
            rule["state"] = _mapping(item["state"], True)
    except ValueError as exc:
        raise ValueError(f"rule {index}: {exc}") from None
    return rule


def _url_path(value: Any, static: bool) -> str:
    text = _string(value, static)
    if not text.startswith("/") or text.startswith("//") or "://" in text:
        raise ValueError(f"expected a path on the target's base_url like '/health', got "
                         f"{text!r}: a playbook can only reach its own target")
    return text


def _path(value: Any, static: bool) -> str:
    text = _string(value, static)
    if not text.startswith("/") or "\x00" in text:
        raise ValueError(f"expected an absolute path inside the container, got {text!r}")
    if ".." in text.split("/"):
        # A rendered path (e.g. from an alert label) must not climb out of where it points.
        raise ValueError(f"path {text[:200]!r} climbs out with '..'; refused")
    return text


def _resources(value: Any, static: bool) -> dict[str, Any]:
    if not isinstance(value, dict) or set(value) - {"memory", "memory_swap", "cpus"}:
        raise ValueError("expected a mapping with memory, memory_swap and/or cpus")
    parsers: dict[str, Callable[[Any, bool], Any]] = {
        "memory": _size, "memory_swap": _swap, "cpus": _number,
    }
    return {key: _coerce_item(parsers[key], item, static) for key, item in value.items()}


def _coerce_item(parse: Callable[[Any, bool], Any], item: Any, static: bool) -> Any:
    """One nested value: left alone when it is a template checked statically."""
    return item if static and is_template(item) else parse(item, static)


def _size(value: Any, static: bool) -> int:
    return parse_size(value)


def _duration(value: Any, static: bool) -> float:
    return parse_duration(value)


HTTP_METHODS = ("GET", "HEAD", "POST")
"""What http.check may send."""


def _method(value: Any, static: bool) -> str:
    if value not in HTTP_METHODS:
        raise ValueError(f"expected GET, HEAD or POST, got {_show(value)}")
    return str(value)


def _level(value: Any, static: bool) -> str:
    if value not in LEVELS:
        raise ValueError(f"expected one of {', '.join(LEVELS)}, got {_show(value)}")
    return str(value)


def _file_mode(value: Any, static: bool) -> int:
    # A number is refused: YAML reads 0644 as 420 and 644 as six hundred and forty-four.
    text = value.strip() if isinstance(value, str) else ""
    if not re.fullmatch(r"0?[0-7]{3}", text):
        raise ValueError(f"expected permission bits in octal like '0644', got {_show(value)} "
                         "(quote it: YAML reads 0644 as a number)")
    return int(text, 8)


def _owner(value: Any, static: bool) -> str:
    text = _string(value, static).strip()
    if not re.fullmatch(r"\d{1,10}:\d{1,10}", text):
        raise ValueError(f"expected a numeric owner 'uid:gid' like '1000:1000', got "
                         f"{_show(value)}")
    return text


def _show(value: Any) -> str:
    if value is None:
        return "nothing"
    return f"{type_name(value)} {value!r}"[:80]


_COERCERS: dict[ArgKind, Callable[[Any, bool], Any]] = {
    ArgKind.STRING: _string, ArgKind.TEXT: _text, ArgKind.INTEGER: _integer,
    ArgKind.NUMBER: _number, ArgKind.BOOLEAN: _boolean, ArgKind.DURATION: _duration,
    ArgKind.SIZE: _size, ArgKind.SWAP: _swap, ArgKind.ARGV: _argv,
    ArgKind.STRING_MAP: _string_map, ArgKind.JSON: _json, ArgKind.MAPPING: _mapping,
    ArgKind.EXPRESSION: _expression, ArgKind.REGEX: _regex, ArgKind.RULES: _rules,
    ArgKind.URL_PATH: _url_path, ArgKind.PATH: _path, ArgKind.RESOURCES: _resources,
    ArgKind.METHOD: _method, ArgKind.LEVEL: _level, ArgKind.FILE_MODE: _file_mode,
    ArgKind.OWNER: _owner,
}
