"""SECURITY.md names the tests beside each claim; every one it names exists, so a renamed or
deleted test cannot leave a claim without its proof. A table cell names them as
`tests/...py::test_name`, then `::other_test` for another test of the same file, or a file
(`tests/...py`, or `test_x.py` in the folder of the file named before it) or a folder
(`tests/reliability/`) whose tests all stand for the claim."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = re.compile(r"`((?:tests/[\w/]*?)?(?:[\w]+\.py)?(?:::\w+)?|tests/[\w/]+/)`")


def references(text: str) -> list[tuple[str, str | None]]:
    """(file or folder, test name or None) for every test reference in the tables, each
    `::name` and bare `test_x.py` resolved against the file named before it in its cell;
    a `::name` with no file before it in its cell is returned with an empty path."""
    found: list[tuple[str, str | None]] = []
    for line in text.splitlines():
        if not line.startswith("|"):
            continue
        for cell in line.split("|"):
            current = ""
            for match in REFERENCE.finditer(cell):
                path, _, name = match.group(1).partition("::")
                if not path and not name:
                    continue
                if path and "/" not in path:  # test_x.py beside the file named before it
                    if not current or not path.startswith("test_"):
                        continue
                    path = str(Path(current).parent / path)
                if path.endswith(".py"):
                    current = path
                elif path:
                    current = ""
                found.append((path if path else current, name or None))
    return found


def broken(path: str, name: str | None) -> str | None:
    if not path:
        return f"::{name} with no tests/...py before it in its cell"
    target = ROOT / path
    if path.endswith("/"):
        return None if target.is_dir() and any(target.glob("test_*.py")) else "no such folder"
    if not target.is_file():
        return "no such file"
    if name and not re.search(rf"^(async )?def {name}\(", target.read_text(), re.M):
        return f"no test {name} in it"
    return None


def test_every_test_security_md_names_exists() -> None:
    named = references((ROOT / "SECURITY.md").read_text())
    assert len([n for _, n in named if n]) > 20, "SECURITY.md names (almost) no test"
    missing = sorted({f"{path}::{name or ''}: {why}" for path, name in named
                      if (why := broken(path, name))})
    assert missing == []


def test_continuations_files_and_folders_are_resolved() -> None:
    cell = ("| claim | `tests/unit/test_a.py::test_one`, `::test_two`; `test_b.py`, "
            "`tests/reliability/`, `config/remediator.yml` | `::orphan` |")
    assert references(cell) == [
        ("tests/unit/test_a.py", "test_one"), ("tests/unit/test_a.py", "test_two"),
        ("tests/unit/test_b.py", None), ("tests/reliability/", None), ("", "orphan")]
    assert broken("tests/unit/test_security_claims.py",
                  "test_continuations_files_and_folders_are_resolved") is None
    assert broken("tests/unit/test_security_claims.py", "test_gone") is not None
    assert broken("tests/unit/test_gone.py", None) is not None
    assert broken("tests/nowhere/", None) is not None
    assert broken("", "orphan") is not None
