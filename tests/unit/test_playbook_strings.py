"""Playbooks are data: no program hides in a YAML string (issue 18). A step runs a shipped,
tested command (`modelserver diagnose`, `modelserver use-model`, scripts/...), so no string
of a shipped playbook spans more than 25 lines of the file, nor holds more than 25 lines."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOKS = sorted((ROOT / "playbooks").glob("*.yml"))
MAX_LINES = 25


def strings(node: yaml.Node, where: str = "") -> Iterator[tuple[str, int, int]]:
    """(path in the document, first line, lines) for every string scalar under a node."""
    if isinstance(node, yaml.ScalarNode):
        if node.tag == "tag:yaml.org,2002:str":
            # A block scalar (| or >) starts on the line after its indicator, and ends
            # where the next token starts (column 0 of the line after its last).
            first = node.start_mark.line + (1 if node.style in ("|", ">") else 0)
            last = node.end_mark.line - (1 if node.end_mark.column == 0 else 0)
            span = max(last - first + 1, len(node.value.splitlines()))
            yield where or "<root>", first + 1, span
    elif isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            yield from strings(value, f"{where}.{key.value}" if where else str(key.value))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            yield from strings(item, f"{where}[{i}]")


def long_strings(text: str, name: str) -> list[str]:
    node = yaml.compose(text)
    return [f"{name}:{line}: {where} spans {lines} lines (at most {MAX_LINES}); ship the "
            "program in the image as a tested command instead"
            for where, line, lines in strings(node) if lines > MAX_LINES] if node else []


@pytest.mark.parametrize("path", PLAYBOOKS, ids=lambda p: p.name)
def test_no_string_in_a_shipped_playbook_is_longer_than_25_lines(path: Path) -> None:
    assert not long_strings(path.read_text(), path.name)


def test_a_program_in_a_playbook_string_is_caught() -> None:
    program = "".join(f"    line_{i} = {i}\n" for i in range(MAX_LINES + 1))
    text = f"name: x\nparams:\n  short: |\n    one\n    two\n  check: |\n{program}steps: []\n"
    assert long_strings(text, "x.yml") == [
        "x.yml:7: params.check spans 26 lines (at most 25); ship the program in the image as "
        "a tested command instead"]
    folded = text.replace("check: |", "check: >-")  # one line once loaded, 26 in the file
    assert len(long_strings(folded, "x.yml")) == 1


def test_the_shipped_playbooks_are_all_checked() -> None:
    assert {p.name for p in PLAYBOOKS} >= {"model_load_failure.yml", "model_load_time.yml",
                                           "model_memory_usage.yml"}
