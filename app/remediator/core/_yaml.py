"""YAML loading that remembers where each value came from, so problems can name a line.

Mappings load as `LineDict` and sequences as `LineList`: plain dict/list subclasses that
also carry the 1-based line of the node itself and of each key or item. Duplicate keys,
which PyYAML silently lets the last one win, are an error here: in a playbook the first
`when:` being ignored would be a nasty surprise.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, SequenceNode

from remediator.core.problems import Problem

__all__ = ["LineDict", "LineList", "child_line", "load_yaml_file", "load_yaml_text", "type_name"]


class LineDict(dict[Any, Any]):
    """A mapping from YAML that knows its line and the line of each key."""

    line: int = 0
    key_lines: dict[Any, int]


class LineList(list[Any]):
    """A sequence from YAML that knows its line and the line of each item."""

    line: int = 0
    item_lines: list[int]


def type_name(value: object) -> str:
    """A value's type as a YAML author knows it: "mapping" and "list", never LineDict."""
    if isinstance(value, dict):
        return "mapping"
    if isinstance(value, list):
        return "list"
    return type(value).__name__


def child_line(container: object, key: object, default: int = 0) -> int:
    """Line of `container[key]` if the loader recorded it, else the container's, else default."""
    if isinstance(container, LineDict):
        return container.key_lines.get(key, container.line)
    if isinstance(container, LineList) and isinstance(key, int):
        if 0 <= key < len(container.item_lines):
            return container.item_lines[key]
        return container.line
    return default


class _LineLoader(yaml.SafeLoader):
    """SafeLoader whose mappings and sequences record their marks."""


def _construct_mapping(loader: _LineLoader, node: MappingNode) -> Iterator[LineDict]:
    data = LineDict()
    data.line = node.start_mark.line + 1
    data.key_lines = {}
    yield data
    loader.flatten_mapping(node)
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str | int | float | bool) and key is not None:
            raise ConstructorError(None, None, "mapping keys must be scalars", key_node.start_mark)
        if key in data.key_lines:
            raise ConstructorError(
                None, None, f"duplicate key {key!r} (first on line {data.key_lines[key]})",
                key_node.start_mark,
            )
        data.key_lines[key] = key_node.start_mark.line + 1
        data[key] = loader.construct_object(value_node, deep=True)


def _construct_sequence(loader: _LineLoader, node: SequenceNode) -> Iterator[LineList]:
    data = LineList()
    data.line = node.start_mark.line + 1
    data.item_lines = [child.start_mark.line + 1 for child in node.value]
    yield data
    data.extend(loader.construct_object(child, deep=True) for child in node.value)


_LineLoader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)
_LineLoader.add_constructor("tag:yaml.org,2002:seq", _construct_sequence)


def load_yaml_text(text: str, file: str) -> tuple[Any, list[Problem]]:
    """Parse YAML text; a syntax error comes back as a Problem with its line, never raised."""
    try:
        return yaml.load(text, Loader=_LineLoader), []  # a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 0
        return None, [Problem(file, line, "", f"invalid YAML: {exc.problem or exc.context}")]
    except yaml.YAMLError as exc:
        return None, [Problem(file, 0, "", f"invalid YAML: {exc}")]


def load_yaml_file(path: Path) -> tuple[Any, list[Problem]]:
    """Read and parse a YAML file; unreadable files come back as a Problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None, [Problem(str(path), 0, "", "no such file")]
    except (OSError, UnicodeDecodeError) as exc:
        return None, [Problem(str(path), 0, "", f"cannot read file: {exc}")]
    return load_yaml_text(text, str(path))
