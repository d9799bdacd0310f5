"""The PostgreSQL store: any number of Remediator replicas on one database (issue 19).

The operations' SQL is shared with SQLite (:mod:`remediator.store.sql`); this module holds
what is PostgreSQL's own, with psycopg 3 and its connection pool:

- connections from a pool (autocommit; a transaction is ``conn.transaction()``), each
  checked before use, so after the database restarts the pool reconnects by itself;
- waiting is bounded: connecting (``connect_timeout``) and getting a pooled connection
  (``PG_POOL_TIMEOUT_S``) fail with StoreError instead of hanging while the database is
  gone (the webhook answers 503, Alertmanager retries);
- migrations run under a session advisory lock, the version kept in ``remediator_schema``,
  so replicas starting at once migrate once;
- intake's transactions are serialized across replicas (a transaction advisory lock), so
  the same alert posted to two replicas is one incident with one execution;
- the password never comes from a command line: libpq reads PGPASSWORD / PGPASSFILE
  (``~/.pgpass``) itself; :attr:`PostgresStore.path` shows the URL without it.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from remediator.core import defaults
from remediator.errors import StoreError
from remediator.store.location import redact_url
from remediator.store.migrations import MIGRATIONS
from remediator.store.sql import ID_TABLES, POSTGRES, SqlStore

__all__ = ["PostgresStore"]

_MIGRATION_LOCK = 0x52454D4544490001
"""pg_advisory_lock key held while one replica migrates ("REMEDI" + 1)."""

_INTAKE_LOCK = 0x52454D4544490002
"""pg_advisory_xact_lock key held by one process_inbox transaction at a time."""


@functools.lru_cache(maxsize=2048)
def _native(sql: str) -> str:
    """The shared SQL's ``?`` placeholders as psycopg's ``%s`` (a literal % doubled)."""
    return sql.replace("%", "%%").replace("?", "%s")


def _params(values: Sequence[Any]) -> list[Any]:
    # PostgreSQL text cannot hold NUL; a NUL in a label or a step's error is data, not a
    # reason to lose the write.
    return [v.replace("\x00", "\ufffd") if isinstance(v, str) else v for v in values]


class _Conn:
    """A psycopg connection that takes the shared SQL (``?`` placeholders)."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> Any:
        return self._conn.execute(_native(sql), _params(parameters))

    def executemany(self, sql: str, seq_of_parameters: Iterable[Sequence[Any]], /) -> Any:
        with self._conn.cursor() as cursor:
            cursor.executemany(_native(sql), [_params(p) for p in seq_of_parameters])


class PostgresStore(SqlStore):
    """The store in a PostgreSQL database (``postgresql://user@host:port/dbname``)."""

    dialect = POSTGRES

    def __init__(self, url: str, *, timeout: float = defaults.PG_POOL_TIMEOUT_S,
                 max_connections: int = defaults.PG_POOL_MAX) -> None:
        self.path = redact_url(url)
        self._instance_id = None
        self._pool: ConnectionPool[Any] = ConnectionPool(
            url, min_size=1, max_size=max_connections, timeout=timeout, open=False,
            name="remediator-store", check=ConnectionPool.check_connection,
            reconnect_timeout=defaults.PG_RECONNECT_TIMEOUT_S,
            kwargs={"autocommit": True, "row_factory": dict_row,
                    "connect_timeout": defaults.PG_CONNECT_TIMEOUT_S,
                    "application_name": "remediator", "keepalives": 1,
                    "keepalives_idle": 10, "keepalives_interval": 5, "keepalives_count": 3})
        try:
            self._pool.open(wait=True, timeout=timeout)
            self._migrate()
        except (psycopg.Error, StoreError) as exc:
            self._pool.close()
            raise StoreError(f"cannot open the store at {self.path}: {exc}") from exc

    # -- connections (private) ------------------------------------------------------------
    @contextmanager
    def _tx(self) -> Iterator[_Conn]:
        try:
            with self._pool.connection() as conn, conn.transaction():
                yield _Conn(conn)
        except psycopg.Error as exc:
            raise StoreError(f"store write failed ({self.path}): {exc}") from exc

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        try:
            with self._pool.connection() as conn:
                return conn.execute(_native(sql), _params(params)).fetchall()
        except psycopg.Error as exc:
            raise StoreError(f"store read failed ({self.path}): {exc}") from exc

    def ping(self) -> bool:
        """Whether the database answers now (waits at most PG_PING_TIMEOUT_S: health checks
        ask this while the database may be gone)."""
        try:
            with self._pool.connection(timeout=defaults.PG_PING_TIMEOUT_S) as conn:
                conn.execute("SELECT 1")
            return True
        except psycopg.Error:
            return False

    def _serialize_intake(self, db: Any) -> None:
        db.execute("SELECT pg_advisory_xact_lock(?)", (_INTAKE_LOCK,))

    def _after_load(self, db: Any) -> None:
        for table in ID_TABLES:  # the next id follows the largest copied one
            db.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                       f"COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)")

    def schema_version(self) -> int:
        return int(self._query("SELECT version FROM remediator_schema")[0]["version"])

    def _migrate(self) -> None:
        """Apply the migrations this database lacks, one replica at a time."""
        with self._pool.connection() as conn:
            conn.execute("SELECT pg_advisory_lock(%s)", (_MIGRATION_LOCK,))
            try:
                with conn.transaction():
                    conn.execute("CREATE TABLE IF NOT EXISTS remediator_schema "
                                 "(version INTEGER NOT NULL)")
                    conn.execute("INSERT INTO remediator_schema(version) SELECT 0 WHERE NOT "
                                 "EXISTS (SELECT 1 FROM remediator_schema)")
                row = conn.execute("SELECT version FROM remediator_schema").fetchone()
                version = int(row["version"]) if row else 0
                for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                    with conn.transaction():
                        for statement in POSTGRES.statements(script):
                            conn.execute(statement)
                        conn.execute("UPDATE remediator_schema SET version = %s", (number,))
            finally:
                with contextlib.suppress(psycopg.Error):  # a lost session dropped it anyway
                    conn.execute("SELECT pg_advisory_unlock(%s)", (_MIGRATION_LOCK,))

    def close(self) -> None:
        self._pool.close()
