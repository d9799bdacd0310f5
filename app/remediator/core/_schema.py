"""Small helpers for hand-written schema checks that report file, line and field.

jsonschema is not a dependency, and its messages would not carry YAML line numbers anyway;
these helpers walk the LineDict/LineList trees from `_yaml` and collect Problems.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Collection, Iterable
from typing import Any, TypeVar

from remediator.core._yaml import child_line, type_name
from remediator.core.problems import Problem

__all__ = ["Checker", "join_field", "suggest"]

T = TypeVar("T")


def join_field(parent: str, key: object) -> str:
    """`steps` + 3 -> `steps[3]`; `steps[3]` + `with` -> `steps[3].with`."""
    if isinstance(key, int) and not isinstance(key, bool):
        return f"{parent}[{key}]"
    return f"{parent}.{key}" if parent else str(key)


def suggest(word: str, choices: Iterable[str]) -> str:
    """A ` (did you mean 'x'?)` hint for a misspelt name, or ""."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


class Checker:
    """Collects the problems of one file while its tree is walked."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[Problem] = []

    def add(self, line: int, field: str, message: str) -> None:
        """Record one problem."""
        self.problems.append(Problem(self.file, line, field, message))

    def at(self, container: object, key: object, parent: str, message: str) -> None:
        """Record a problem about `container[key]`, at that key's line."""
        self.add(child_line(container, key), join_field(parent, key), message)

    def mapping(self, value: object, field: str, line: int) -> dict[Any, Any] | None:
        """The value if it is a mapping, else a problem and None."""
        if isinstance(value, dict):
            return value
        self.add(line, field, f"expected a mapping, got {_kind(value)}")
        return None

    def keys(
        self, mapping: dict[Any, Any], field: str, allowed: Collection[str],
        required: Collection[str] = (),
    ) -> None:
        """Problems for unknown keys (with a spelling hint) and missing required keys."""
        for key in mapping:
            if key not in allowed:
                hint = suggest(str(key), allowed)
                self.at(mapping, key, field, f"unknown key{hint}; allowed: {', '.join(allowed)}")
        for key in required:
            if key not in mapping:
                self.add(child_line(mapping, key), join_field(field, key), "is required")

    def convert(
        self, mapping: dict[Any, Any], key: str, field: str, parse: Callable[[Any], T],
    ) -> T | None:
        """`parse(mapping[key])`, turning its ValueError into a problem; None if absent/bad."""
        if key not in mapping:
            return None
        try:
            return parse(mapping[key])
        except ValueError as exc:
            self.at(mapping, key, field, str(exc))
            return None

    def string(self, mapping: dict[Any, Any], key: str, field: str) -> str | None:
        """A non-empty string value, or a problem."""
        return self.convert(mapping, key, field, expect_str)

    def str_map(self, mapping: dict[Any, Any], key: str, field: str) -> dict[str, str] | None:
        """A non-empty mapping of string to string (label selectors), or a problem."""
        value = mapping.get(key)
        sub = self.mapping(value, join_field(field, key), child_line(mapping, key))
        if sub is None:
            return None
        result: dict[str, str] = {}
        for name, item in sub.items():
            if not isinstance(name, str) or not isinstance(item, str):
                hint = " (quote it: YAML reads yes/no/on/off and numbers as other types)"
                self.at(sub, name, join_field(field, key), f"expected a string{hint}")
            else:
                result[name] = item
        if not sub:
            self.add(child_line(mapping, key), join_field(field, key), "must not be empty")
        return result


def expect_str(value: object) -> str:
    """The value if it is a non-empty string; else ValueError."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"expected a non-empty string, got {_kind(value)}")
    return value


def _kind(value: object) -> str:
    if value is None:
        return "nothing"
    return f"{type_name(value)} {value!r}"[:80]
