"""The store owns its tables: outside ``remediator.store`` no module imports a database
driver or holds SQL text (issue 17). A second backend is then a second implementation of
``remediator.store.api.Store``, and nothing else has to change."""

from __future__ import annotations

import ast
import re
from pathlib import Path

APP = Path(__file__).resolve().parents[2] / "app"
STORE_PACKAGE = APP / "remediator" / "store"

DRIVERS = frozenset({"sqlite3", "_sqlite3", "psycopg", "psycopg2", "psycopg_pool", "asyncpg",
                     "pg8000", "sqlalchemy", "aiosqlite", "apsw", "pymysql", "MySQLdb"})

SQL = re.compile(
    r"\bSELECT\b[\s\S]*?\bFROM\b|\bINSERT\s+(?:OR\s+\w+\s+)?INTO\b|\bUPDATE\s+\w+\s+SET\b|"
    r"\bDELETE\s+FROM\b|\b(?:CREATE|DROP|ALTER)\s+(?:UNIQUE\s+)?(?:TABLE|INDEX|VIEW|TRIGGER)\b|"
    r"\bPRAGMA\s+\w+|\bBEGIN\s+(?:IMMEDIATE|EXCLUSIVE|DEFERRED|TRANSACTION)\b")
"""SQL statements as written in this code base (keywords upper case), not English prose."""


def offenders(root: Path, store_package: Path) -> list[str]:
    """Every driver import and SQL-bearing string literal under ``root`` outside the store
    package, as ``path:line: what``."""
    found: list[str] = []
    for path in sorted(root.rglob("*.py")):
        if store_package in path.parents:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        where = path.relative_to(root)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                names = []
            for name in names:
                if name.split(".")[0] in DRIVERS:
                    found.append(f"{where}:{node.lineno}: imports {name}")
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                match = SQL.search(node.value)
                if match:
                    found.append(f"{where}:{node.lineno}: SQL text {match.group(0)[:40]!r}")
    return found


def test_no_module_outside_the_store_package_imports_a_driver_or_holds_sql() -> None:
    assert offenders(APP, STORE_PACKAGE) == []


def test_the_check_sees_sql_and_drivers(tmp_path: Path) -> None:
    # The guard itself must be able to fail: a module like the old outbox is caught.
    (tmp_path / "outbox.py").write_text(
        'import sqlite3\nfrom psycopg import sql\n'
        'Q = "SELECT id FROM deliveries WHERE status = ?"\n'
        'def f(db, x):\n    db.execute(f"UPDATE deliveries SET status = {x}")\n'
        '    db.execute("INSERT OR IGNORE INTO t(a) VALUES (?)", (1,))\n'
        'DOC = "select a playbook from the list"  # prose is not SQL\n')
    (tmp_path / "store").mkdir()
    (tmp_path / "store" / "sqlite.py").write_text('import sqlite3\nQ = "DELETE FROM inbox"\n')
    found = offenders(tmp_path, tmp_path / "store")
    assert sorted(line.split(": ", 1)[1] for line in found) == [
        "SQL text 'INSERT OR IGNORE INTO'", "SQL text 'SELECT id FROM'",
        "SQL text 'UPDATE deliveries SET'", "imports psycopg", "imports sqlite3"]
