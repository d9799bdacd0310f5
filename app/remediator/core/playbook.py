"""The playbook loaders and the choice of playbook for an alert.

A playbook is data: YAML checked by `_playbook_schema` (see docs there and in the README),
loaded into the frozen dataclasses of `playbook_model`, and run by
`runner.run_playbook`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from remediator.core._playbook_schema import (
    check_playbook_data,
    check_playbook_file,
    check_playbook_set,
)
from remediator.core._yaml import load_yaml_text
from remediator.core.alerts import Alert
from remediator.core.playbook_model import Playbook
from remediator.core.problems import format_problems
from remediator.errors import PlaybookSchemaError

if TYPE_CHECKING:
    from remediator.core.targets import Target

__all__ = [
    "load_playbook",
    "load_playbook_text",
    "load_playbooks",
    "select_playbook",
]


def load_playbook(
    path: str | Path, targets: Sequence[Target] | None = None,
    teams: Collection[str] | None = None,
) -> Playbook:
    """Load and check one playbook file; PlaybookSchemaError lists file:line: field: problem.

    Literal target names are checked against `targets`, team names against `teams` (the
    escalation policy's), when given.
    """
    playbook, problems = check_playbook_file(Path(path), targets, teams)
    if problems or playbook is None:
        raise PlaybookSchemaError(f"invalid playbook:\n{format_problems(problems)}")
    return playbook


def load_playbook_text(
    text: str, file: str = "<playbook>", targets: Sequence[Target] | None = None,
) -> Playbook:
    """Like load_playbook, from YAML text (tests, the API's replay of stored playbooks)."""
    data, problems = load_yaml_text(text, file)
    playbook = None
    if not problems:
        playbook, problems = check_playbook_data(data, file, targets)
    if problems or playbook is None:
        raise PlaybookSchemaError(f"invalid playbook:\n{format_problems(problems)}")
    return playbook


def load_playbooks(
    directory: str | Path, targets: Sequence[Target] | None = None,
    teams: Collection[str] | None = None,
) -> list[Playbook]:
    """Every *.yml / *.yaml playbook in a directory (sorted), checked together.

    One bad file fails the whole set: a half-loaded set of playbooks would silently leave
    some alerts without their runbook.
    """
    playbooks, problems = check_playbook_set(playbook_files(Path(directory)), targets, teams)
    if problems:
        raise PlaybookSchemaError(f"invalid playbooks:\n{format_problems(problems)}")
    return playbooks


def playbook_files(directory: Path) -> list[Path]:
    """The YAML files of a playbook directory, sorted (PlaybookSchemaError if missing)."""
    if not directory.is_dir():
        raise PlaybookSchemaError(f"{directory}: playbook directory not found")
    return sorted(p for p in directory.iterdir() if p.suffix in (".yml", ".yaml") and p.is_file())


def select_playbook(
    playbooks: Sequence[Playbook], alert: Alert | Mapping[str, str],
) -> Playbook | None:
    """The playbook whose `match` labels all equal the alert's; the most labels wins.

    Ties go to the first in the given order (load_playbooks sorts by file name, and
    `remediator validate` reports playbooks whose match is identical).
    """
    labels = alert.labels if isinstance(alert, Alert) else alert
    best: Playbook | None = None
    for playbook in playbooks:
        if playbook.matches(labels) and (best is None or len(playbook.match) > len(best.match)):
            best = playbook
    return best
