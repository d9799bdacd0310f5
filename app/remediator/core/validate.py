"""`remediator validate`: every problem in playbooks and config, as file:line: field: message.

Directories expand to their *.yml / *.yaml files. A file named remediator.yml (or .yaml)
is checked as the Remediator config and lends its targets to the playbook checks; any
other file is checked as a playbook.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from remediator.core._playbook_schema import check_playbook_set
from remediator.core.config import check_config_file
from remediator.core.problems import Problem
from remediator.core.targets import Target

__all__ = ["is_config_file", "validate_paths"]

_CONFIG_NAMES = ("remediator.yml", "remediator.yaml")


def is_config_file(path: Path) -> bool:
    """True for the Remediator config file (by name)."""
    return path.name in _CONFIG_NAMES


def validate_paths(
    paths: Sequence[str | Path], targets: Sequence[Target] | None = None,
) -> list[Problem]:
    """All problems in these files and directories; an empty list means valid.

    Target names and bounds in playbooks are checked against `targets`, or else against
    the targets of a config file among `paths` (when that config is itself valid).
    """
    files, problems = _expand([Path(p) for p in paths])
    for config in [f for f in files if is_config_file(f)]:
        values, found = check_config_file(config)
        problems += found
        if targets is None and not found:
            targets = values.get("targets", [])
    playbook_files = [f for f in files if not is_config_file(f)]
    problems += check_playbook_set(playbook_files, targets)[1]
    order = {str(f): i for i, f in enumerate(files)}
    return sorted(problems, key=lambda p: (order.get(p.file, -1), p.line))


def _expand(paths: list[Path]) -> tuple[list[Path], list[Problem]]:
    files: list[Path] = []
    problems: list[Problem] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.iterdir()
                           if p.suffix in (".yml", ".yaml") and p.is_file())
            files += found
            if not found:
                problems.append(Problem(str(path), 0, "", "no .yml or .yaml files in directory"))
        elif path.exists():
            files.append(path)
        else:
            problems.append(Problem(str(path), 0, "", "no such file or directory"))
    return list(dict.fromkeys(files)), problems
