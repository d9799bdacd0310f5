"""Tests' own look at a store's SQLite file, beside the store's API (which hands out no
SQL): what a user with the sqlite3 shell would check. SQLite backend only."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Sequence
from typing import Any, Protocol


class _HasPath(Protocol):
    path: str


def rows(store: _HasPath, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
    """The rows of ``sql`` read through a second connection to the store's file."""
    with contextlib.closing(sqlite3.connect(store.path, timeout=30)) as db:
        db.row_factory = sqlite3.Row
        return [dict(row) for row in db.execute(sql, params).fetchall()]


def execute(store: _HasPath, sql: str, params: Sequence[Any] = ()) -> None:
    """Change the store's file behind its back (a row as an older version left it)."""
    with contextlib.closing(sqlite3.connect(store.path, timeout=30)) as db, db:
        db.execute(sql, params)
