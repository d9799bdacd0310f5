"""`remediator validate`: every problem in playbooks and config, as file:line: field: message.

Directories expand to their *.yml / *.yaml files. A file named remediator.yml (or .yaml,
or a variant such as remediator.compose.yml), or one handed in as `configs`, is checked as
the Remediator config and lends its targets to the playbook checks; one
named escalation.yml is checked as the escalation policy and lends its team names; any
other file is checked as a playbook.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from remediator.core._playbook_schema import check_playbook_set
from remediator.core.config import check_config_file
from remediator.core.escalation_load import check_escalation_file
from remediator.core.problems import Problem
from remediator.core.targets import Target

__all__ = ["is_config_file", "is_escalation_file", "validate_paths"]

_CONFIG_NAME = re.compile(r"remediator(\.[\w-]+)?\.ya?ml")
_ESCALATION_NAMES = ("escalation.yml", "escalation.yaml")


def is_config_file(path: Path) -> bool:
    """True for a Remediator config file (by name: remediator.yml, remediator.<variant>.yml)."""
    return _CONFIG_NAME.fullmatch(path.name) is not None


def is_escalation_file(path: Path) -> bool:
    """True for the escalation policy file (by name)."""
    return path.name in _ESCALATION_NAMES


def validate_paths(
    paths: Sequence[str | Path], targets: Sequence[Target] | None = None,
    teams: Sequence[str] | None = None, configs: Sequence[str | Path] = (),
) -> list[Problem]:
    """All problems in these files and directories; an empty list means valid.

    Target names and bounds in playbooks are checked against `targets`, or else against
    the targets of a config file among `paths` or `configs` (the first one that is itself
    valid); team names against `teams`, or else those of an escalation policy among `paths`.
    """
    files, problems = _expand([*map(Path, paths), *map(Path, configs)])
    config_files = [f for f in files if is_config_file(f) or f in set(map(Path, configs))]
    for config in config_files:
        values, found = check_config_file(config)
        problems += found
        if targets is None and not found:
            targets = values.get("targets", [])
    for policy in [f for f in files if is_escalation_file(f)]:
        names, found = _policy_teams(policy)
        problems += found
        teams = names if teams is None else teams
    playbook_files = [f for f in files if f not in config_files and not is_escalation_file(f)]
    problems += check_playbook_set(playbook_files, targets, teams)[1]
    order = {str(f): i for i, f in enumerate(files)}
    return sorted(problems, key=lambda p: (order.get(p.file, -1), p.line))


def _policy_teams(path: Path) -> tuple[list[str] | None, list[Problem]]:
    """Team names of an escalation policy (None unless it is valid), and its problems."""
    policy, problems = check_escalation_file(path)
    return (list(policy.teams) if policy else None), problems


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
