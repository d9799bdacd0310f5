"""The SQL every backend shares: the store's operations, written once, over a small dialect.

payload → inbox row → incident → execution → steps → outcome → notification outbox.
:class:`SqlStore` holds every operation of :class:`~remediator.store.api.Store` as SQL that
SQLite (3.35+) and PostgreSQL both run: ``?`` placeholders (a backend's connection turns
them into its own), ``INSERT ... ON CONFLICT`` and ``RETURNING``, ISO-8601 text
timestamps. What differs is a :class:`Dialect` (row locking clauses, column types in the
migrations) and each backend's module (:mod:`~remediator.store.sqlite`,
:mod:`~remediator.store.postgres`): connections, transactions, the recorded schema
version, and driver errors turned into :class:`~remediator.errors.StoreError`.
This package is the only place with SQL text or a database driver.
"""

from __future__ import annotations

import functools
import json
import re
import secrets
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar

from remediator.core.alerts import Alert, parse_alert
from remediator.core.clock import iso, parse_iso, utc_now
from remediator.core.clock import now_iso as _now
from remediator.core.redact import redact_data
from remediator.errors import PayloadError, StoreError
from remediator.store.api import IntakeBatch
from remediator.store.records import (
    ClaimRecord,
    DeadLetter,
    Delivery,
    DeliveryStatus,
    DueDeliveryRecord,
    Execution,
    ExecutionState,
    InboxItem,
    InboxState,
    Incident,
    IncidentStatus,
    LastKnownGood,
    NewNotification,
    Notification,
    NotificationKind,
    NotificationStatus,
    StepRecord,
    StepStatus,
)

__all__ = ["ID_TABLES", "MAX_OUTPUT_CHARS", "POSTGRES", "SQLITE", "TABLES", "Conn", "Dialect",
           "SqlIntakeBatch", "SqlStore", "capped"]

MAX_OUTPUT_CHARS = 64 * 1024
"""Cap of one step's stored outputs (JSON characters); longer output is truncated."""

T = TypeVar("T")

_IN_CHUNK = 500
"""Values per `IN (...)` (SQLite caps the parameters of one statement)."""

_SETTLED_BAD = ("failed", "not_configured", "skipped")


def dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def capped(value: Any) -> str:
    """JSON of a step's outputs (or arguments) within MAX_OUTPUT_CHARS, same keys and shape.

    A resumed run adopts stored outputs and later steps read them (`steps.logs.output`),
    and the report reads `output`: so long strings are cut to their head and tail around a
    marker, long lists to their first items, and the field paths cut are listed under
    `_truncated` (the sandbox hides `_` names from templates).
    """
    text = dumps(value)
    if len(text) <= MAX_OUTPUT_CHARS:
        return text
    original = json.loads(text)  # JSON types only, as stored
    limit = MAX_OUTPUT_CHARS // 2
    while len(text) > MAX_OUTPUT_CHARS and limit >= _MIN_KEPT_CHARS:
        # Each pass cuts the original with a smaller limit, so the markers count what the
        # stored value really lost.
        cut: list[str] = []
        shrunk = _shrink(original, limit, "", cut)
        if isinstance(shrunk, dict):
            shrunk["_truncated"] = cut
        text, limit = dumps(shrunk), limit // 2
    if len(text) > MAX_OUTPUT_CHARS:  # thousands of short fields: keep a readable output
        output = original.get("output") if isinstance(original, dict) else None
        text = dumps({"output": _cut(str(output if output is not None else text),
                                     MAX_OUTPUT_CHARS // 2), "_truncated": ["*"]})
    return text


_MIN_KEPT_CHARS = 256
"""The shortest a string is cut to (and 1/16 of it the most list items kept) by capped()."""


def _shrink(value: Any, limit: int, path: str, cut: list[str]) -> Any:
    """`value` with strings over `limit` characters and lists over limit/16 items cut."""
    if isinstance(value, str) and len(value) > limit:
        cut.append(path or "$")
        return _cut(value, limit)
    if isinstance(value, dict):  # a top-level `_truncated` is ours, from an earlier cut
        return {key: _shrink(item, limit, f"{path}.{key}" if path else str(key), cut)
                for key, item in value.items() if path or key != "_truncated"}
    if isinstance(value, list):
        keep = max(8, limit // 16)
        if len(value) > keep:
            cut.append(path or "$")
        return [_shrink(item, limit, f"{path}[{i}]", cut) for i, item in enumerate(value[:keep])]
    return value


def _cut(text: str, limit: int) -> str:
    """The head and tail of `text`, `limit` characters in all, around a marker saying so."""
    half = limit // 2
    return (f"{text[:half]}\n... [{len(text) - 2 * half} characters cut by the store] ...\n"
            f"{text[-half:]}")






Row = Any
"""A result row: read by column name (``row["id"]``), whatever the driver's row type."""


class Conn(Protocol):
    """What the operations use inside a transaction: a connection that takes ``?``
    placeholders (sqlite3's own; PostgreSQL's wraps psycopg)."""

    def execute(self, sql: str, parameters: Sequence[Any] = ..., /) -> Any: ...
    def executemany(self, sql: str, seq_of_parameters: Iterable[Sequence[Any]], /
                    ) -> Any: ...


@dataclass(frozen=True)
class Dialect:
    """What the shared SQL leaves to a backend."""

    name: str
    row_locks: bool
    """``SELECT ... FOR UPDATE [OF t] [SKIP LOCKED]`` (PostgreSQL). SQLite's write
    transaction holds the whole database, so it needs none."""
    types: tuple[tuple[str, str], ...] = ()
    """Column types the migrations (written for SQLite) are given instead (regex, type)."""

    def for_update(self, of: str | None = None, *, skip_locked: bool = False) -> str:
        """The clause that locks the rows a SELECT reads until the transaction ends."""
        if not self.row_locks:
            return ""
        return f" FOR UPDATE{f' OF {of}' if of else ''}{' SKIP LOCKED' if skip_locked else ''}"

    def ddl(self, script: str) -> str:
        """A migration's statements in this dialect's types."""
        for pattern, replacement in self.types:
            script = re.sub(pattern, replacement, script)
        return script

    def statements(self, script: str) -> list[str]:
        return [each for each in self.ddl(script).split(";") if each.strip()]


SQLITE = Dialect("sqlite", row_locks=False)
POSTGRES = Dialect("postgresql", row_locks=True, types=(
    (r"\bINTEGER PRIMARY KEY AUTOINCREMENT\b",
     "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"),
    (r"\bINTEGER\b", "BIGINT"),  # ids up to MAX_ROW_ID, as in SQLite
    (r"\bBLOB\b", "BYTEA"),
    (r"\bREAL\b", "DOUBLE PRECISION"),
))

ID_TABLES = ("inbox", "dead_letters", "incidents", "executions", "steps", "notifications",
             "deliveries")
"""The tables whose rows have a generated id."""

TABLES = ("inbox", "dead_letters", "incidents", "incident_aliases", "executions", "steps",
          "notifications", "deliveries", "last_known_good", "settings", "leases")
"""Every table, each after the ones it references (the order a copy inserts in)."""


class SqlStore:
    """Every operation of the Store API, over a backend's connections (see the module)."""

    path: str
    dialect: Dialect = SQLITE
    _instance_id: str | None = None

    # -- what a backend provides ------------------------------------------------------------
    def _tx(self) -> AbstractContextManager[Conn]:
        """One write transaction: commits on leaving, rolls back on an exception; driver
        errors raise StoreError."""
        raise NotImplementedError

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """The rows of one read (its own snapshot); driver errors raise StoreError."""
        raise NotImplementedError

    def _serialize_intake(self, db: Conn) -> None:
        """Inside process_inbox's transaction, before it reads: wait for any other
        process's intake on this database to commit (SQLite's write lock already does)."""

    def schema_version(self) -> int:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    # -- shared -----------------------------------------------------------------------------
    def _query_in(self, sql: str, values: Sequence[Any]) -> list[Row]:
        """`sql` with each `{marks}` filled by placeholders for `values`, run over chunks."""
        rows: list[Row] = []
        uses = sql.count("{marks}")
        for start in range(0, len(values), _IN_CHUNK):
            part = list(values[start:start + _IN_CHUNK])
            rows += self._query(sql.format(marks=",".join("?" * len(part))), part * uses)
        return rows

    def ping(self) -> bool:
        try:
            self._query("SELECT 1 AS one")
            return True
        except StoreError:
            return False

    # -- copying a whole store (remediator.store.copy) --------------------------------------
    def dump(self, table: str) -> Iterator[dict[str, Any]]:
        """Every row of `table` as stored, in id order (what `remediator db copy` moves)."""
        for row in self._query(f"SELECT * FROM {_table(table)} ORDER BY 1"):
            yield dict(row)

    def has_rows(self, table: str) -> bool:
        return bool(self._query(f"SELECT 1 AS one FROM {_table(table)} LIMIT 1"))

    def load(self, tables: Mapping[str, Sequence[Mapping[str, Any]]]) -> dict[str, int]:
        """Insert these rows, ids and all, in one transaction (tables in TABLES order)."""
        counts: dict[str, int] = {}
        with self._tx() as db:
            for table in TABLES:
                rows = tables.get(table, ())
                counts[table] = len(rows)
                if not rows:
                    continue
                columns = list(rows[0])
                db.executemany(f"INSERT INTO {_table(table)}({', '.join(columns)}) VALUES "
                               f"({', '.join('?' * len(columns))})",
                               [tuple(row[c] for c in columns) for row in rows])
            self._after_load(db)
        return counts

    def _after_load(self, db: Conn) -> None:
        """After rows were inserted with their ids: make new ids follow them (SQLite's
        AUTOINCREMENT already does)."""

    # -- intake ---------------------------------------------------------------------------
    def record_inbox(self, bodies: Sequence[bytes]) -> list[int]:
        """Commit webhook bodies in one transaction; returns their ids once durable."""
        now = _now()
        ids: list[int] = []
        try:
            with self._tx() as db:
                # One statement per chunk (one round trip to PostgreSQL): the ids are
                # given in the order of the VALUES, so the sorted ids are the bodies'.
                for start in range(0, len(bodies), _IN_CHUNK):
                    part = bodies[start:start + _IN_CHUNK]
                    rows = db.execute("INSERT INTO inbox(received_at, body) VALUES "
                                      f"{', '.join(['(?, ?)'] * len(part))} RETURNING id",
                                      [v for body in part for v in (now, body)]).fetchall()
                    ids += sorted(int(row["id"]) for row in rows)
            return ids
        except StoreError as exc:
            raise StoreError(f"could not store the webhook payload: {exc}") from exc

    def add_inbox(self, body: bytes) -> int:
        """Commit one webhook body; returns only once it is durable."""
        return self.record_inbox([body])[0]

    def add_dead_letter(self, body: bytes, reason: str, content_type: str | None) -> int:
        try:
            with self._tx() as db:
                return _insert_dead_letter(db, body, reason, content_type)
        except StoreError as exc:
            raise StoreError(f"could not store the dead letter: {exc}") from exc

    def unprocessed_inbox(self, limit: int = 100) -> list[InboxItem]:
        return [InboxItem(int(r["id"]), bytes(r["body"]), r["received_at"])
                for r in self._query("SELECT id, body, received_at FROM inbox WHERE "
                                     "processed_at IS NULL ORDER BY id LIMIT ?", (limit,))]

    def inbox(self, limit: int = 100) -> list[InboxItem]:
        """Stored payloads, oldest first, processed or not."""
        return [InboxItem(int(r["id"]), bytes(r["body"]), r["received_at"],
                          InboxState.PENDING if r["processed_at"] is None
                          else InboxState.PROCESSED)
                for r in self._query("SELECT id, body, received_at, processed_at FROM inbox "
                                     "ORDER BY id LIMIT ?", (limit,))]

    def inbox_depth(self) -> int:
        return int(self._query("SELECT COUNT(*) AS n FROM inbox "
                               "WHERE processed_at IS NULL")[0]["n"])

    def process_inbox(self, items: Sequence[InboxItem],
                      handle: Callable[[IntakeBatch, InboxItem], list[T]]) -> list[T]:
        """One transaction: ``handle`` each item with the batch's operations, and mark each
        processed; all of it commits together, or none of it (a crash replays the items).
        Intake's decisions are serialized across processes on one database (one incident
        per alert however many replicas receive it), and an item another process already
        processed is skipped."""
        results: list[T] = []
        now = _now()
        with self._tx() as db:
            self._serialize_intake(db)
            batch = SqlIntakeBatch(db)
            for item in items:
                # Another process (a replica) may have processed it since it was read.
                if db.execute("UPDATE inbox SET processed_at = ? WHERE id = ? AND "
                              "processed_at IS NULL", (now, item.id)).rowcount:
                    results += handle(batch, item)
        return results

    def dead_letter_inbox(self, item: InboxItem, reason: str) -> int:
        """An inbox item intake cannot process: kept as a dead letter, marked processed."""
        with self._tx() as db:
            letter = _insert_dead_letter(db, item.body, reason, "application/json")
            db.execute("UPDATE inbox SET processed_at = ? WHERE id = ?", (_now(), item.id))
        return letter

    def dead_letters(self, limit: int = 50) -> list[DeadLetter]:
        rows = self._query("SELECT * FROM dead_letters ORDER BY id DESC LIMIT ?", (limit,))
        return [DeadLetter(int(r["id"]), r["received_at"], r["reason"], r["content_type"],
                           bytes(r["body"])) for r in rows]

    def count(self, what: str) -> int:
        """How many rows of a kind the store holds: inbox, dead_letters, incidents,
        executions, steps, notifications, deliveries."""
        if what not in _COUNTABLE:
            raise ValueError(f"cannot count {what!r}: one of {', '.join(_COUNTABLE)}")
        return int(self._query(f"SELECT COUNT(*) AS n FROM {what}")[0]["n"])

    @property
    def instance_id(self) -> str:
        """This store's own random id, made once and kept. Notifications carry it in their
        dedup keys, so a new store's incident 1 is never taken for an older store's (a
        PagerDuty alert still open from before would swallow the new page). A store that
        already sent notifications before ids existed keeps its keys: "" (no id)."""
        if self._instance_id is None:
            with self._tx() as db:
                if db.execute("SELECT 1 FROM settings WHERE key = 'instance_id'").fetchone() \
                        is None:
                    sent = db.execute("SELECT 1 FROM notifications LIMIT 1").fetchone()
                    db.execute("INSERT INTO settings(key, value) VALUES ('instance_id', ?) "
                               "ON CONFLICT(key) DO NOTHING",
                               ("" if sent else secrets.token_hex(4),))
                self._instance_id = str(db.execute(
                    "SELECT value FROM settings WHERE key = 'instance_id'").fetchone()["value"])
        return self._instance_id

    # -- settings -------------------------------------------------------------------------
    def get_setting(self, key: str, default: str | None = None) -> str | None:
        rows = self._query("SELECT value FROM settings WHERE key = ?", (key,))
        return str(rows[0]["value"]) if rows else default

    def set_setting(self, key: str, value: str) -> None:
        with self._tx() as db:
            db.execute("INSERT INTO settings(key, value) VALUES (?, ?) "
                       "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (key, value))

    # -- incidents ------------------------------------------------------------------------
    def mark_fixed(self, incident_id: int) -> None:
        with self._tx() as db:
            db.execute("UPDATE incidents SET fixed_at = ?, updated_at = ? WHERE id = ?",
                       (_now(), _now(), incident_id))

    def closable(self, before: datetime) -> list[Incident]:
        """Fixed and resolved incidents whose stability window ended before `before`."""
        stamp = iso(before)
        rows = self._query("SELECT * FROM incidents WHERE closed_at IS NULL AND fixed_at IS "
                           "NOT NULL AND status = 'resolved' AND fixed_at <= ? AND "
                           "resolved_at <= ?", (stamp, stamp))
        return [_incident(row) for row in rows]

    def close_incident(self, incident_id: int) -> None:
        with self._tx() as db:
            db.execute("UPDATE incidents SET closed_at = ?, updated_at = ? WHERE id = ? AND "
                       "closed_at IS NULL", (_now(), _now(), incident_id))

    def claim_incident(self, incident_id: int, by: str, at: datetime) -> ClaimRecord | None:
        """Make ``by`` the incident's owner and cancel its pending executions, in one
        transaction, unless someone already owns it (then: the owner, ``new`` False).
        None when there is no such incident."""
        with self._tx() as db:
            row = db.execute("SELECT claimed_by, claimed_at FROM incidents WHERE id = ?"
                             f"{self.dialect.for_update()}", (incident_id,)).fetchone()
            if row is None:
                return None
            if row["claimed_by"] is not None:
                return ClaimRecord(row["claimed_by"], row["claimed_at"], new=False)
            stamp = iso(at)
            db.execute("UPDATE incidents SET claimed_by = ?, claimed_at = ?, updated_at = ? "
                       "WHERE id = ?", (by, stamp, stamp, incident_id))
            pending = [int(r["id"]) for r in db.execute(
                "SELECT id FROM executions WHERE incident_id = ? AND state = 'pending'",
                (incident_id,)).fetchall()]
            db.executemany(
                "UPDATE executions SET state = 'cancelled', outcome = 'aborted', error = ?, "
                "finished_at = ? WHERE id = ? AND state = 'pending'",
                [(f"cancelled: incident claimed by {by}", stamp, ex) for ex in pending])
        return ClaimRecord(by, stamp, new=True, cancelled=tuple(pending))

    def record_last_known_good(self, target: str, image: str, config: dict[str, Any]) -> None:
        with self._tx() as db:
            db.execute("INSERT INTO last_known_good(target, image, config, recorded_at) "
                       "VALUES (?, ?, ?, ?) ON CONFLICT(target) DO UPDATE SET "
                       "image = excluded.image, config = excluded.config, "
                       "recorded_at = excluded.recorded_at", (target, image, dumps(config),
                                                              _now()))

    def last_known_good_record(self, target: str) -> LastKnownGood | None:
        rows = self._query("SELECT * FROM last_known_good WHERE target = ?", (target,))
        if not rows:
            return None
        return LastKnownGood(target, rows[0]["image"], json.loads(rows[0]["config"]),
                             rows[0]["recorded_at"])

    def last_known_good(self, target: str) -> dict[str, Any] | None:
        """The runtime's view: image, the config's fields, recorded_at."""
        record = self.last_known_good_record(target)
        return record.view() if record else None

    def incident(self, incident_id: int) -> Incident | None:
        rows = self._query("SELECT * FROM incidents WHERE id = ?", (incident_id,))
        return _incident(rows[0]) if rows else None

    def incidents(self, limit: int = 50) -> list[Incident]:
        rows = self._query("SELECT * FROM incidents ORDER BY id DESC LIMIT ?", (limit,))
        return [_incident(row) for row in rows]

    def incidents_by_ids(self, ids: Sequence[int]) -> list[Incident]:
        return [_incident(row) for row in self._query_in(
            "SELECT * FROM incidents WHERE id IN ({marks}) ORDER BY id", list(ids))]

    def firing_incidents(self) -> list[Incident]:
        return [_incident(row) for row in self._query(
            "SELECT * FROM incidents WHERE status = 'firing' ORDER BY id")]

    def firing_marks(self) -> dict[int, tuple[Any, ...]]:
        """Firing incidents' ids and :attr:`Incident.mark` (what can change after insert),
        without reading their labels: a cheap check of which cached records are stale."""
        rows = self._query("SELECT id, status, updated_at, note, notices, claimed_by, "
                           "fixed_at, reopened, target FROM incidents WHERE status = 'firing' "
                           "ORDER BY id")
        return {int(r["id"]): (r["status"], r["updated_at"], r["note"], r["notices"],
                               r["claimed_by"], r["fixed_at"], r["reopened"], r["target"])
                for r in rows}

    def incident_ids_for_keys(self, keys: Iterable[str]) -> set[int]:
        """The incidents these alert keys belong to: by their own key, or by the key of a
        re-fire that reopened them (an alias)."""
        return {int(row["id"]) for row in self._query_in(
            "SELECT id FROM incidents WHERE incident_key IN ({marks}) UNION "
            "SELECT incident_id AS id FROM incident_aliases WHERE incident_key IN ({marks})",
            sorted(keys))}

    def change_token(self) -> tuple[Any, ...]:
        """Changes when incidents are added or touched or an execution starts: a cheap
        fingerprint for a poller to tell whether to look again."""
        row = self._query(
            "SELECT (SELECT COUNT(*) FROM incidents) AS n, "
            "(SELECT MAX(updated_at) FROM incidents) AS touched, "
            "(SELECT MAX(id) FROM executions WHERE started_at IS NOT NULL) AS started")[0]
        return (row["n"], row["touched"], row["started"])

    # -- executions -----------------------------------------------------------------------
    def claim_execution(self, execution_id: int, dry_run: bool | None = None, *,
                        from_state: ExecutionState | str = ExecutionState.PENDING,
                        owner: str = "", lease_until: datetime | None = None,
                        now: datetime | None = None) -> bool:
        """Claim an execution and mark it running: only if it is still in `from_state`
        (what the dispatcher read; `running` to resume one a crash interrupted). False when
        something else took it first (cancelled by a claim, started elsewhere): then it
        must not run. On its first start, `dry_run` (when given) records the mode it runs
        in, so a resume after a crash keeps it (the SET sees the old row).

        With an `owner` (a replica's id) the row's lease becomes theirs until `lease_until`,
        and a row held under another owner's lease that has not expired at `now` is not
        taken: a replica resumes a running execution only once its runner stopped renewing.
        Without an owner nothing about leases is checked (one process per store)."""
        moment = iso(now or utc_now())
        holder = owner or None
        until = iso(lease_until) if lease_until is not None else None
        mode = "dry_run" if dry_run is None else \
            f"CASE WHEN started_at IS NULL THEN {int(dry_run)} ELSE dry_run END"
        lease_free = " AND (lease_owner IS NULL OR lease_until IS NULL OR lease_until <= ? " \
                     "OR lease_owner = ?)" if holder else ""
        params: tuple[Any, ...] = (moment, holder, until, execution_id, str(from_state))
        if holder:
            params = (*params, moment, holder)
        with self._tx() as db:
            cur = db.execute(f"UPDATE executions SET state = 'running', dry_run = {mode}, "
                             "started_at = COALESCE(started_at, ?), lease_owner = ?, "
                             f"lease_until = ? WHERE id = ? AND state = ?{lease_free}", params)
            return cur.rowcount == 1

    def renew_execution_lease(self, execution_id: int, owner: str,
                              lease_until: datetime) -> bool:
        """Extend `owner`'s lease on a running execution; False when the row is no longer
        running under `owner` (it finished, or another replica took it over): stop."""
        with self._tx() as db:
            cur = db.execute("UPDATE executions SET lease_until = ? WHERE id = ? AND "
                             "state = 'running' AND lease_owner = ?",
                             (iso(lease_until), execution_id, owner))
            return cur.rowcount == 1

    def record_step(self, execution_id: int, position: int, step: StepRecord, *,
                    owner: str = "") -> bool:
        """Upsert one step's result (a step is written when it starts and when it ends).
        With an `owner`, only while the execution runs under that owner's lease: a replica
        that lost it (another took the run over) writes nothing; False then."""
        guard = ("" if not owner else " AND EXISTS (SELECT 1 FROM executions WHERE id = ? "
                 "AND state = 'running' AND lease_owner = ?)")
        values: tuple[Any, ...] = (
            execution_id, position, step.id, step.action, step.phase, step.status.value,
            step.attempts, step.started_at, step.duration_s,
            capped(redact_data(dict(step.outputs))),
            capped(redact_data(dict(step.rendered_args))), redact_data(step.error), step.note)
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO steps(execution_id, position, step_id, action, phase, status, "
                "attempts, started_at, duration_s, outputs, rendered_args, error, note) "
                f"SELECT ?,?,?,?,?,?,?,?,?,?,?,?,? WHERE 1 = 1{guard} "
                "ON CONFLICT(execution_id, step_id) DO UPDATE "
                "SET status=excluded.status, attempts=excluded.attempts, "
                "duration_s=excluded.duration_s, outputs=excluded.outputs, "
                "rendered_args=excluded.rendered_args, error=excluded.error, note=excluded.note",
                (*values, execution_id, owner) if owner else values)
            return cur.rowcount == 1

    def finish_execution(self, execution_id: int, state: ExecutionState | str, outcome: str,
                         scenario: str | None, error: str | None,
                         escalations: Sequence[Mapping[str, Any]],
                         pending: Mapping[str, Any] | None = None,
                         fixed_incident: int | None = None, *,
                         owner: str = "") -> Execution | None:
        """Store an execution's end. `pending` (the run's summary, for escalation) is
        committed with it: escalation reads it from here, so a crash right after this
        commit cannot lose a page (see pending_escalations). `fixed_incident`: the
        incident this run fixed (validated), marked fixed in the same commit. With an
        `owner`, only while the execution runs under that owner's lease (a replica that
        lost it ends nothing). Returns the finished execution as stored (steps included;
        None if there is no such one, or it was not `owner`'s to end)."""
        guard = " AND state = 'running' AND lease_owner = ?" if owner else ""
        params: tuple[Any, ...] = (str(state), outcome, scenario, error,
                                   dumps([dict(e) for e in escalations]), _now(),
                                   None if pending is None else dumps(dict(pending)),
                                   execution_id)
        with self._tx() as db:
            cur = db.execute("UPDATE executions SET state = ?, outcome = ?, scenario = ?, "
                             "error = ?, escalations = ?, finished_at = ?, "
                             f"escalation_pending = ? WHERE id = ?{guard}",
                             (*params, owner) if owner else params)
            if owner and cur.rowcount != 1:
                return None
            if fixed_incident is not None:
                db.execute("UPDATE incidents SET fixed_at = ?, updated_at = ? WHERE id = ?",
                           (_now(), _now(), fixed_incident))
            row = db.execute("SELECT * FROM executions WHERE id = ?",
                             (execution_id,)).fetchone()
            steps = db.execute("SELECT * FROM steps WHERE execution_id = ? ORDER BY position",
                               (execution_id,)).fetchall()
        return _execution(row, tuple(_step(s) for s in steps)) if row else None

    def pending_escalations(self) -> list[tuple[int, dict[str, Any]]]:
        """Finished executions whose escalation is not yet in the outbox, oldest first."""
        rows = self._query("SELECT id, escalation_pending FROM executions "
                           "WHERE escalation_pending IS NOT NULL ORDER BY id")
        return [(int(row["id"]), json.loads(row["escalation_pending"])) for row in rows]

    def escalation_pending(self, execution_id: int) -> bool:
        return bool(self._query("SELECT 1 FROM executions WHERE id = ? AND "
                                "escalation_pending IS NOT NULL", (execution_id,)))

    def escalation_handled(self, execution_id: int) -> None:
        """Escalation put what this execution's end calls for into the outbox."""
        with self._tx() as db:
            db.execute("UPDATE executions SET escalation_pending = NULL WHERE id = ?",
                       (execution_id,))

    def executions_in_state(self, *states: ExecutionState | str) -> list[Execution]:
        """Executions in these states, oldest first (their steps not read: see steps)."""
        marks = ",".join("?" * len(states))
        return [_execution(row, ()) for row in self._query(
            f"SELECT * FROM executions WHERE state IN ({marks}) ORDER BY id",
            [str(s) for s in states])]

    def steps(self, execution_id: int) -> list[StepRecord]:
        rows = self._query("SELECT * FROM steps WHERE execution_id = ? ORDER BY position",
                           (execution_id,))
        return [_step(row) for row in rows]

    def execution(self, execution_id: int) -> Execution | None:
        rows = self._query("SELECT * FROM executions WHERE id = ?", (execution_id,))
        if not rows:
            return None
        return _execution(rows[0], tuple(self.steps(execution_id)))

    def executions(self, limit: int = 50) -> list[Execution]:
        rows = self._query("SELECT * FROM executions ORDER BY id DESC LIMIT ?", (limit,))
        return [_execution(row, tuple(self.steps(int(row["id"])))) for row in rows]

    def executions_for(self, incident_id: int) -> list[Execution]:
        rows = self._query("SELECT * FROM executions WHERE incident_id = ? ORDER BY id",
                           (incident_id,))
        return [_execution(row, tuple(self.steps(int(row["id"])))) for row in rows]

    def first_playbook(self, incident_id: int) -> str | None:
        """The playbook of the incident's first execution."""
        rows = self._query("SELECT playbook FROM executions WHERE incident_id = ? "
                           "ORDER BY id LIMIT 1", (incident_id,))
        return str(rows[0]["playbook"]) if rows else None

    def latest_finished(self, incident_ids: Sequence[int]) -> dict[int, int]:
        """Incident id -> its latest finished execution's id, for these incidents."""
        return {int(row["incident_id"]): int(row["id"]) for row in self._query_in(
            "SELECT incident_id, MAX(id) AS id FROM executions WHERE state = 'finished' "
            "AND incident_id IN ({marks}) GROUP BY incident_id", list(incident_ids))}

    def started_among(self, incident_ids: Sequence[int]) -> set[int]:
        """Those of these incidents with an execution that really started (not a dry run)."""
        return {int(row["incident_id"]) for row in self._query_in(
            "SELECT DISTINCT incident_id FROM executions WHERE dry_run = 0 AND "
            "started_at IS NOT NULL AND incident_id IN ({marks})", list(incident_ids))}

    def latest_finished_execution(self, incident_id: int) -> Execution | None:
        rows = self._query("SELECT id FROM executions WHERE incident_id = ? AND "
                           "state = 'finished' ORDER BY id DESC LIMIT 1", (incident_id,))
        return self.execution(int(rows[0]["id"])) if rows else None

    def add_execution(self, incident_id: int | None, playbook: str, target: str,
                      alert: Alert | None, dry_run: bool, replay_of: int | None = None) -> int:
        """Queue an execution (pending)."""
        with self._tx() as db:
            return _insert_execution(db, incident_id, playbook, target,
                                     alert.to_dict() if alert else {}, dry_run, replay_of)

    def add_replay(self, execution_id: int, dry_run: bool) -> int | None:
        """Queue a new execution repeating `execution_id` (same alert, playbook, target)."""
        with self._tx() as db:
            row = db.execute("SELECT * FROM executions WHERE id = ?", (execution_id,)).fetchone()
            if row is None:
                return None
            return _insert_execution(db, row["incident_id"], row["playbook"], row["target"],
                                     json.loads(row["alert"]), dry_run,
                                     replay_of=execution_id)

    def prune(self, before: datetime) -> int:
        """Delete finished executions (and their steps) and processed payloads older than
        `before`; incidents, dead letters and notifications are kept."""
        stamp = iso(before)
        with self._tx() as db:
            old = "SELECT id FROM executions WHERE state IN ('finished', 'cancelled') AND " \
                  "COALESCE(finished_at, created_at) < ?"
            db.execute(f"DELETE FROM steps WHERE execution_id IN ({old})", (stamp,))
            gone = db.execute("DELETE FROM executions WHERE state IN ('finished', 'cancelled') "
                              "AND COALESCE(finished_at, created_at) < ?",
                              (stamp,)).rowcount
            db.execute("DELETE FROM inbox WHERE processed_at IS NOT NULL AND processed_at < ?",
                       (stamp,))
        return int(gone)

    # -- named leases ---------------------------------------------------------------------
    def acquire_lease(self, name: str, owner: str, until: datetime, now: datetime) -> bool:
        """Take the lease `name` for `owner` until `until` if it is free or expired at
        `now`, or renew it if `owner` holds it: one statement, so of two replicas racing
        for it one wins."""
        with self._tx() as db:
            row = db.execute(
                "INSERT INTO leases(name, owner, expires_at) VALUES (?, ?, ?) "
                "ON CONFLICT(name) DO UPDATE SET owner = excluded.owner, "
                "expires_at = excluded.expires_at WHERE leases.expires_at <= ? "
                "OR leases.owner = excluded.owner RETURNING owner",
                (name, owner, iso(until), iso(now))).fetchone()
            return row is not None

    def release_lease(self, name: str, owner: str) -> None:
        """Give the lease up now, if `owner` holds it (another may take it at once)."""
        with self._tx() as db:
            db.execute("DELETE FROM leases WHERE name = ? AND owner = ?", (name, owner))

    def lease_holder(self, name: str, now: datetime) -> str | None:
        """Who holds the lease `name` at `now`; None when it is free or expired."""
        rows = self._query("SELECT owner FROM leases WHERE name = ? AND expires_at > ?",
                           (name, iso(now)))
        return str(rows[0]["owner"]) if rows else None

    # -- notifications (the outbox: remediator.escalation.outbox) --------------------------
    def enqueue_notification(self, new: NewNotification, now: datetime) -> int | None:
        """Accept a notification and one pending delivery per channel; None when its
        (dedup_key, kind) was accepted before. With no channel it is failed at once."""
        stamp = iso(now)
        with self._tx() as db:
            rows = db.execute(
                "INSERT INTO notifications(incident_id, kind, dedup_key, team, "
                "level, severity, rule, reason, message, status, trigger_id, criteria, "
                "created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?) "
                "ON CONFLICT(dedup_key, kind) DO NOTHING RETURNING id",
                (new.incident_id, str(new.kind), new.dedup_key, new.team, new.level,
                 new.severity, new.rule, new.reason, dumps(dict(new.message)), "pending",
                 new.trigger_id, json.dumps(list(new.criteria)) if new.criteria else None,
                 stamp, stamp)).fetchall()
            if not rows:
                return None
            notification_id = int(rows[0]["id"])
            for name, kind in new.channels:
                db.execute(
                    "INSERT INTO deliveries(notification_id, channel, channel_type, status, "
                    "next_attempt_at, updated_at) VALUES (?,?,?,?,?,?)",
                    (notification_id, name, kind, "pending", stamp, stamp))
            if not new.channels:
                reason = f"no channel of team {new.team} takes {new.level} notifications"
                db.execute("UPDATE notifications SET status = 'failed', status_reason = ? "
                           "WHERE id = ?", (reason, notification_id))
        return notification_id

    def notification_exists(self, dedup_key: str, kind: NotificationKind | str) -> bool:
        return bool(self._query("SELECT 1 FROM notifications WHERE dedup_key = ? AND kind = ?",
                                (dedup_key, str(kind))))

    def trigger_criteria(self, dedup_key: str) -> tuple[int, set[str]] | None:
        """The trigger accepted for ``dedup_key``: its id and the criteria (rules) it and
        its updates told of; None when there is none yet."""
        rows = self._query("SELECT id, rule, criteria FROM notifications "
                           "WHERE dedup_key = ? AND kind = 'trigger'", (dedup_key,))
        if not rows:
            return None
        row = rows[0]
        told = set(json.loads(row["criteria"])) if row["criteria"] else {row["rule"]}
        told.update(r["rule"] for r in self._query(
            "SELECT rule FROM notifications WHERE trigger_id = ? AND kind = 'update'",
            (row["id"],)))
        return int(row["id"]), told

    def recover_interrupted_deliveries(self, now: datetime, *,
                                       owner: str | None = None) -> int:
        """Deliveries left ``sending`` by a replica that stopped are due again (at least
        once): those whose claim expired at `now` (or has no expiry: claimed before claims
        had one), and with `owner`, every one `owner` holds (a restarted replica takes
        back its own at once). A live claim of another replica is left alone."""
        stamp = iso(now)
        with self._tx() as db:
            cur = db.execute("UPDATE deliveries SET status = 'retry', next_attempt_at = ?, "
                             "last_error = COALESCE(last_error, 'interrupted by a restart'), "
                             "claim_owner = NULL, claim_until = NULL WHERE status = 'sending' "
                             "AND (claim_until IS NULL OR claim_until <= ? OR claim_owner = ?)",
                             (stamp, stamp, owner))
            return int(cur.rowcount)

    def claim_due_deliveries(self, now: datetime, busy: Iterable[str] = (), *,
                             owner: str = "", until: datetime | None = None
                             ) -> list[DueDeliveryRecord]:
        """Mark ``sending`` and return the oldest due delivery of each idle channel, claimed
        by `owner` until `until` (see recover_interrupted_deliveries): one transaction, so
        two replicas never claim the same delivery. `busy`: channels this process is
        sending on; with an `owner`, a channel another owner holds a live claim on is busy
        too, so each channel still sends one at a time, in order (a resolve never overtakes
        its trigger on another replica)."""
        skip, stamp = set(busy), iso(now)
        elsewhere, params = "", [stamp]
        if owner:
            elsewhere = ("AND NOT EXISTS (SELECT 1 FROM deliveries s WHERE s.channel = "
                         "deliveries.channel AND s.status = 'sending' AND s.claim_owner <> ? "
                         "AND s.claim_until > ?) ")
            params = [stamp, owner, stamp]
        with self._tx() as db:
            # Only the head of each channel's queue is read (the writer lock is held here,
            # and an alert storm can leave thousands of rows due at once).
            rows = db.execute(
                "SELECT d.id, d.notification_id, d.channel, d.channel_type, d.attempts, "
                "n.team, n.kind, n.trigger_id, n.message, n.created_at FROM deliveries d "
                "JOIN notifications n ON n.id = d.notification_id WHERE d.id IN ("
                "SELECT MIN(id) FROM deliveries WHERE status IN ('pending', 'retry') AND "
                f"next_attempt_at <= ? {elsewhere}GROUP BY channel) AND d.status IN "
                f"('pending', 'retry') ORDER BY d.id"
                f"{self.dialect.for_update('d', skip_locked=True)}", params).fetchall()
            chosen = [row for row in rows if row["channel"] not in skip]  # one at a time
            db.executemany("UPDATE deliveries SET status = 'sending', updated_at = ?, "
                           "claim_owner = ?, claim_until = ? WHERE id = ?",
                           [(stamp, owner or None, iso(until) if until else None, row["id"])
                            for row in chosen])
        return [DueDeliveryRecord(int(r["id"]), int(r["notification_id"]), r["channel"],
                                  r["channel_type"], int(r["attempts"]), r["team"],
                                  NotificationKind(r["kind"]), r["trigger_id"],
                                  json.loads(r["message"]), r["created_at"]) for r in chosen]

    def delivery(self, notification_id: int, channel: str) -> Delivery | None:
        rows = self._query("SELECT * FROM deliveries WHERE notification_id = ? AND "
                           "channel = ?", (notification_id, channel))
        return _delivery(rows[0]) if rows else None

    def postpone_delivery(self, delivery_id: int, until: datetime, now: datetime) -> None:
        with self._tx() as db:
            db.execute("UPDATE deliveries SET status = 'pending', next_attempt_at = ?, "
                       "updated_at = ?, claim_owner = NULL, claim_until = NULL WHERE id = ?",
                       (iso(until), iso(now), delivery_id))

    def record_attempt(self, delivery_id: int, notification_id: int, status: DeliveryStatus,
                       *, tried: bool, now: datetime, next_attempt_at: datetime | None = None,
                       error: str | None = None, detail: str | None = None) -> None:
        """Store one attempt's outcome and bring the notification's status up to date (it
        follows its deliveries: pending while any owes an attempt, else delivered, skipped
        when every one was, else failed; the reason lists the bad ones)."""
        stamp = iso(now)
        delivered_at = stamp if status is DeliveryStatus.DELIVERED else None
        with self._tx() as db:
            if self.dialect.row_locks:
                # The notification's row first: two replicas recording attempts of its
                # deliveries settle it one after the other, each seeing the other's.
                db.execute(f"SELECT id FROM notifications WHERE id = ?"
                           f"{self.dialect.for_update()}", (notification_id,))
            db.execute(
                "UPDATE deliveries SET status = ?, attempts = attempts + ?, next_attempt_at = ?, "
                "last_error = COALESCE(?, last_error), detail = ?, delivered_at = ?, "
                "updated_at = ?, claim_owner = NULL, claim_until = NULL WHERE id = ?",
                (status.value, int(tried), iso(next_attempt_at) if next_attempt_at else None,
                 error, detail, delivered_at, stamp, delivery_id))
            _settle(db, notification_id, stamp)

    def next_delivery_at(self) -> datetime | None:
        rows = self._query("SELECT MIN(next_attempt_at) AS due FROM deliveries "
                           "WHERE status IN ('pending', 'retry')")
        due = rows[0]["due"] if rows else None
        return parse_iso(due) if due else None

    def outbox_depth(self) -> int:
        rows = self._query("SELECT COUNT(*) AS n FROM deliveries "
                           "WHERE status IN ('pending', 'sending', 'retry')")
        return int(rows[0]["n"])

    def triggers_to_resolve(self) -> list[Notification]:
        """Triggers of resolved incidents that reached (or may still reach) someone and
        have no resolve notice yet."""
        return [_notification(row, ()) for row in self._query(
            "SELECT n.* FROM notifications n JOIN incidents i ON i.id = n.incident_id "
            "WHERE i.status = 'resolved' AND n.kind = 'trigger' "
            "AND n.status IN ('pending', 'delivered') AND NOT EXISTS (SELECT 1 FROM "
            "notifications r WHERE r.kind = 'resolve' AND r.dedup_key = n.dedup_key) "
            "ORDER BY n.id")]

    def live_channels(self, notification_id: int) -> list[tuple[str, str]]:
        """Channels of a notification that delivered it or may still."""
        rows = self._query(
            "SELECT channel, channel_type FROM deliveries WHERE notification_id = ? AND "
            "status IN ('pending', 'sending', 'retry', 'delivered') ORDER BY id",
            (notification_id,))
        return [(row["channel"], row["channel_type"]) for row in rows]

    def notifications(self, limit: int = 50) -> list[Notification]:
        """Newest first, each with its deliveries."""
        rows = self._query("SELECT * FROM notifications ORDER BY id DESC LIMIT ?", (limit,))
        return [_notification(row, tuple(_delivery(d) for d in self._query(
            "SELECT * FROM deliveries WHERE notification_id = ? ORDER BY id", (row["id"],))))
            for row in rows]


_COUNTABLE = ("inbox", "dead_letters", "incidents", "executions", "steps", "notifications",
              "deliveries")


class SqlIntakeBatch:
    """Intake's operations inside one :meth:`SqlStore.process_inbox` transaction."""

    def __init__(self, db: Conn) -> None:
        self._db = db

    def incident_by_key(self, key: str) -> Incident | None:
        """The incident of this alert key, by its own key or an alias (a reopening)."""
        row = self._db.execute("SELECT * FROM incidents WHERE incident_key = ? UNION ALL "
                               "SELECT i.* FROM incident_aliases a JOIN incidents i "
                               "ON i.id = a.incident_id WHERE a.incident_key = ?",
                               (key, key)).fetchone()
        return _incident(row) if row else None

    def reopenable(self, fingerprint: str) -> Incident | None:
        """The latest incident of this alert that was fixed and is not closed yet."""
        row = self._db.execute("SELECT * FROM incidents WHERE fingerprint = ? AND fixed_at "
                               "IS NOT NULL AND closed_at IS NULL ORDER BY id DESC LIMIT 1",
                               (fingerprint,)).fetchone()
        return _incident(row) if row else None

    def reopen(self, incident_id: int, new_key: str, note: str | None) -> None:
        """Reopen a fixed incident for a re-fire (its key becomes an alias); ``note`` says
        why it is not acted on, or None."""
        self._db.execute("INSERT INTO incident_aliases(incident_key, incident_id) "
                         "VALUES (?, ?) ON CONFLICT DO NOTHING", (new_key, incident_id))
        self._db.execute("UPDATE incidents SET status = 'firing', reopened = reopened + 1, "
                         "notices = notices + 1, fixed_at = NULL, resolved_at = NULL, "
                         "updated_at = ? WHERE id = ?", (_now(), incident_id))
        self._db.execute("UPDATE incidents SET note = ? WHERE id = ?", (note, incident_id))

    def add_incident(self, alert: Alert, target: str | None, note: str | None) -> int:
        now = _now()
        data = alert.to_dict()
        labels = data["labels"]
        cur = self._db.execute(
            "INSERT INTO incidents(incident_key, fingerprint, alertname, starts_at, status, "
            "labels, annotations, generator_url, target, note, created_at, updated_at) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?) RETURNING id",
            (alert.incident_key, data["fingerprint"], labels.get("alertname", ""),
             data["startsAt"], data["status"], dumps(labels), dumps(data["annotations"]),
             data.get("generatorURL", ""), target, note, now, now))
        return _returned_id(cur)

    def touch_incident(self, incident_id: int, status: IncidentStatus | str) -> None:
        """Another notice of a known incident: count it, and set its status."""
        now = _now()
        resolved_at = now if str(status) == "resolved" else None
        self._db.execute("UPDATE incidents SET notices = notices + 1, status = ?, "
                         "updated_at = ?, resolved_at = COALESCE(?, resolved_at) WHERE id = ?",
                         (str(status), now, resolved_at, incident_id))

    def add_execution(self, incident_id: int, playbook: str, target: str, alert: Alert) -> int:
        return _insert_execution(self._db, incident_id, playbook, target, alert.to_dict(),
                                 False, None)

    def runs_since(self, target: str, since: datetime, playbook: str | None = None) -> int:
        """Real runs started by alerts on ``target`` since ``since`` (of ``playbook``)."""
        sql = ("SELECT COUNT(*) AS n FROM executions WHERE target = ? AND dry_run = 0 "
               "AND replay_of IS NULL AND created_at >= ?")
        params: tuple[str, ...] = (target, iso(since))
        if playbook is not None:
            sql, params = sql + " AND playbook = ?", (*params, playbook)
        return int(self._db.execute(sql, params).fetchone()["n"])


# -- rows to records (private) ----------------------------------------------------------
def _table(name: str) -> str:
    if name not in TABLES:
        raise ValueError(f"no table {name!r}: one of {', '.join(TABLES)}")
    return name


def _returned_id(cursor: Any) -> int:
    """The id an ``INSERT ... RETURNING id`` made (every row read: SQLite finishes the
    statement only then)."""
    return int(cursor.fetchall()[0]["id"])


def _insert_dead_letter(db: Conn, body: bytes, reason: str,
                        content_type: str | None) -> int:
    return _returned_id(db.execute("INSERT INTO dead_letters(received_at, reason, "
                                   "content_type, body) VALUES (?, ?, ?, ?) RETURNING id",
                                   (_now(), reason, content_type, body)))


def _insert_execution(db: Conn, incident_id: int | None, playbook: str,
                      target: str, alert: Mapping[str, Any], dry_run: bool,
                      replay_of: int | None) -> int:
    cur = db.execute(
        "INSERT INTO executions(incident_id, playbook, target, state, dry_run, replay_of, "
        "alert, created_at) VALUES (?,?,?,?,?,?,?,?) RETURNING id",
        (incident_id, playbook, target, "pending", int(dry_run), replay_of, dumps(alert),
         _now()))
    return _returned_id(cur)


def _settle(db: Conn, notification_id: int, now: str) -> None:
    rows = db.execute("SELECT channel, status, last_error FROM deliveries "
                      "WHERE notification_id = ? ORDER BY id", (notification_id,)).fetchall()
    states = [row["status"] for row in rows]
    problems = "; ".join(f"{r['channel']}: {r['status'].replace('_', ' ')}"
                         f"{' (' + r['last_error'] + ')' if r['last_error'] else ''}"
                         for r in rows if r["status"] in _SETTLED_BAD)
    if any(DeliveryStatus(state).active for state in states):
        status = NotificationStatus.PENDING
    elif "delivered" in states:
        status = NotificationStatus.DELIVERED
    elif states and all(state == "skipped" for state in states):
        status = NotificationStatus.SKIPPED
    else:
        status = NotificationStatus.FAILED
    db.execute("UPDATE notifications SET status = ?, status_reason = ?, updated_at = ? "
               "WHERE id = ?", (status.value, problems or None, now, notification_id))


def _incident(row: Row) -> Incident:
    return Incident(
        id=int(row["id"]), incident_key=row["incident_key"], fingerprint=row["fingerprint"],
        alertname=row["alertname"], starts_at=row["starts_at"],
        status=IncidentStatus(row["status"]), labels=json.loads(row["labels"]),
        annotations=json.loads(row["annotations"]), generator_url=row["generator_url"],
        target=row["target"], note=row["note"], notices=int(row["notices"]),
        created_at=row["created_at"], updated_at=row["updated_at"],
        resolved_at=row["resolved_at"], claimed_by=row["claimed_by"],
        claimed_at=row["claimed_at"], fixed_at=row["fixed_at"], closed_at=row["closed_at"],
        reopened=int(row["reopened"] or 0))


@functools.lru_cache(maxsize=4096)
def _alert(text: str) -> Alert | None:
    """An execution's stored alert, parsed; the same stored text parses once per process
    (the dispatcher reads every pending execution each tick)."""
    try:
        return parse_alert(json.loads(text))
    except (PayloadError, ValueError):
        return None


def _execution(row: Row, steps: tuple[StepRecord, ...]) -> Execution:
    return Execution(
        id=int(row["id"]), incident_id=row["incident_id"], playbook=row["playbook"],
        target=row["target"], state=ExecutionState(row["state"]), alert=_alert(row["alert"]),
        dry_run=bool(row["dry_run"]), created_at=row["created_at"], outcome=row["outcome"],
        scenario=row["scenario"], replay_of=row["replay_of"], error=row["error"],
        escalations=tuple(json.loads(row["escalations"])), started_at=row["started_at"],
        finished_at=row["finished_at"], steps=steps)


def _step(row: Row) -> StepRecord:
    return StepRecord(
        id=row["step_id"], action=row["action"], phase=row["phase"],
        status=StepStatus(row["status"]), attempts=int(row["attempts"]),
        started_at=row["started_at"], duration_s=row["duration_s"],
        outputs=json.loads(row["outputs"]), rendered_args=json.loads(row["rendered_args"]),
        error=row["error"], note=row["note"])


def _delivery(row: Row) -> Delivery:
    return Delivery(channel=row["channel"], channel_type=row["channel_type"],
                    status=DeliveryStatus(row["status"]), attempts=int(row["attempts"]),
                    next_attempt_at=row["next_attempt_at"], last_error=row["last_error"],
                    detail=row["detail"], delivered_at=row["delivered_at"],
                    updated_at=row["updated_at"])


def _notification(row: Row, deliveries: tuple[Delivery, ...]) -> Notification:
    return Notification(
        id=int(row["id"]), incident_id=row["incident_id"], kind=NotificationKind(row["kind"]),
        dedup_key=row["dedup_key"], team=row["team"], level=row["level"],
        severity=row["severity"], rule=row["rule"], reason=row["reason"],
        message=json.loads(row["message"]), status=NotificationStatus(row["status"]),
        status_reason=row["status_reason"], trigger_id=row["trigger_id"],
        created_at=row["created_at"], updated_at=row["updated_at"],
        criteria=tuple(json.loads(row["criteria"])) if row["criteria"] else None,
        deliveries=deliveries)


def ago(delta: timedelta) -> datetime:
    """The moment `delta` before now."""
    return utc_now() - delta
