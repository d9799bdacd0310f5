"""Remediator's store: one API of named operations over typed records.

``records``     the typed records and StrEnum states that cross the API
``api``         the :class:`Store` Protocol every backend implements
``sql``         the SQL every backend shares, over a small dialect
``sqlite``      the SQLite backend (the default: one file)
``postgres``    the PostgreSQL backend (replicas on one database)
``migrations``  numbered schema migrations, applied at start
``location``    what a --db names: a SQLite path, sqlite:///path, postgresql://...
``copy``        moving a store from one backend to another (`remediator db copy`)

Only this package holds SQL text or imports a database driver.

Open one with :func:`open_store`.
"""

from __future__ import annotations

from pathlib import Path

from remediator.store.api import IntakeBatch, Store
from remediator.store.location import display, is_postgres, sqlite_path, url_password
from remediator.store.records import MAX_ROW_ID, iso, parse_iso

__all__ = ["MAX_ROW_ID", "IntakeBatch", "Store", "display", "is_postgres", "iso", "open_store",
           "parse_iso", "sqlite_path", "url_password"]


def open_store(location: str | Path) -> Store:
    """The store at ``location``, migrated: a SQLite file path (or ``:memory:``),
    ``sqlite:///path`` (``sqlite:////abs/path`` for an absolute one), or
    ``postgresql://user@host:port/dbname`` (the password from libpq's environment:
    PGPASSWORD, or the password file PGPASSFILE names)."""
    if is_postgres(location):
        from remediator.store.postgres import PostgresStore

        return PostgresStore(str(location))
    from remediator.store.sqlite import SqliteStore

    return SqliteStore(sqlite_path(location))
