"""The SQLite store: the default backend (one file, what `make up` uses).

WAL mode with synchronous=FULL: a commit that returned is on disk, so the webhook answers
202 only after its payload is durable. One write connection behind a lock (SQLite has one
writer anyway) and one read connection per thread, so reads see WAL snapshots without
waiting for writes. The operations' SQL is shared with PostgreSQL (:mod:`remediator.store.
sql`); this module holds what is SQLite's own: connections, ``BEGIN IMMEDIATE``, the schema
version in ``PRAGMA user_version``, and ``sqlite3`` errors turned into StoreError.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from remediator.adapters.private_files import create_private
from remediator.errors import StoreError
from remediator.store.migrations import MIGRATIONS
from remediator.store.sql import (
    MAX_OUTPUT_CHARS,
    SQLITE,
    SqlStore,
    capped,
)

__all__ = ["MAX_OUTPUT_CHARS", "SqliteStore", "capped"]


_LOCK_WAIT_S = 30.0
"""How long a statement waits for another connection's lock on the file."""


class SqliteStore(SqlStore):
    """The store in one SQLite file (or ``:memory:``)."""

    dialect = SQLITE

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            create_private(Path(self.path))  # SQLite gives its -wal/-shm files this mode too
        self._lock = threading.RLock()
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._instance_id = None
        try:
            self._db = self._connect()
            self._wal()
            self._migrate()
        except (sqlite3.Error, StoreError) as exc:
            raise StoreError(f"cannot open the store at {self.path}: {exc}") from exc

    # -- connections (private) ------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None,
                             timeout=_LOCK_WAIT_S)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA synchronous=FULL")
        db.execute("PRAGMA foreign_keys=ON")
        return db

    def _wal(self) -> None:
        """Switch the file to WAL. The switch takes the file exclusively and SQLite does
        not wait for that lock (no busy handler): a process opening the same new file at
        that moment retries instead of failing."""
        deadline = time.monotonic() + _LOCK_WAIT_S
        while True:
            try:
                self._db.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    def _reader(self) -> sqlite3.Connection:
        reader: sqlite3.Connection | None = getattr(self._local, "db", None)
        if reader is None:
            if self.path == ":memory:":
                return self._db  # a second connection would be another database
            try:
                reader = self._local.db = self._connect()
            except sqlite3.Error as exc:  # the file gone bad or away: a store error, a 503
                raise StoreError(f"cannot read the store at {self.path}: {exc}") from exc
            with self._lock:
                self._readers.append(reader)
        return reader

    def schema_version(self) -> int:
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def _migrate(self) -> None:
        """Each missing migration in its own transaction; the version is read again
        inside it, so two processes opening a new file at once apply each once."""
        for number, script in enumerate(MIGRATIONS, start=1):
            if self.schema_version() >= number:
                continue
            with self._tx() as db:
                if self.schema_version() >= number:
                    continue
                for statement in SQLITE.statements(script):
                    db.execute(statement)
                db.execute(f"PRAGMA user_version={number}")

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                yield self._db
                self._db.execute("COMMIT")
            except BaseException as exc:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise StoreError(f"store write failed: {exc}") from exc
                raise

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        reader = self._reader()
        if reader is self._db:
            with self._lock:
                return self._read(reader, sql, params)
        return self._read(reader, sql, params)

    @staticmethod
    def _read(db: sqlite3.Connection, sql: str, params: Sequence[Any]) -> list[sqlite3.Row]:
        try:
            return list(db.execute(sql, params).fetchall())
        except sqlite3.Error as exc:
            raise StoreError(f"store read failed: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            for reader in self._readers:
                reader.close()
            self._readers.clear()
            self._db.close()
