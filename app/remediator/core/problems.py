"""A problem found in a file: where (file, line, field) and what, printed like a compiler."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["Problem", "format_problems"]


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong in a playbook or config file.

    `line` is 1-based (0 when the file could not be read at all); `field` is a path like
    `steps[3].with.cmd` ("" for the whole file).
    """

    file: str
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}"
        if not self.field:
            return f"{where}: {self.message}"
        return f"{where}: {self.field}: {self.message}"


def format_problems(problems: Iterable[Problem]) -> str:
    """All problems, one per line, for an exception message or a terminal."""
    return "\n".join(str(problem) for problem in problems)
