"""Remediator's store: one API of named operations over typed records.

``records``     the typed records and StrEnum states that cross the API
``api``         the :class:`Store` Protocol every backend implements
``sqlite``      the SQLite backend (the only module with SQL text or a database driver)
``migrations``  numbered schema migrations, applied at start

Open one with :func:`open_store`.
"""

from __future__ import annotations

from pathlib import Path

from remediator.store.api import IntakeBatch, Store
from remediator.store.records import MAX_ROW_ID, iso, parse_iso

__all__ = ["MAX_ROW_ID", "IntakeBatch", "Store", "iso", "open_store", "parse_iso"]


def open_store(location: str | Path) -> Store:
    """The store at ``location`` (a SQLite file path, or ``:memory:``), migrated."""
    from remediator.store.sqlite import SqliteStore

    return SqliteStore(location)
