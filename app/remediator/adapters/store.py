"""The SQLite store: every arrow of the data flow is a row, so nothing is lost.

payload → inbox row → incident → execution → steps → outcome → notification outbox.
WAL mode with synchronous=FULL: a commit that returned is on disk, so the webhook answers
202 only after its payload is durable. Schema changes are numbered migrations.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from remediator.adapters.private_files import create_private
from remediator.core.redact import redact_data
from remediator.errors import StoreError

__all__ = ["MAX_OUTPUT_CHARS", "MAX_ROW_ID", "Store", "ago", "iso", "utcnow"]

MAX_ROW_ID = 2**63 - 1
"""Largest id SQLite's INTEGER holds: a larger one cannot name a row (and overflows)."""

MAX_OUTPUT_CHARS = 64 * 1024
"""Cap of one step's stored outputs (JSON characters); longer output is truncated."""

MIGRATIONS: Sequence[str] = (
    # 1: the walking skeleton's tables.
    """
    CREATE TABLE inbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        received_at TEXT NOT NULL,
        body BLOB NOT NULL,
        processed_at TEXT
    );
    CREATE INDEX inbox_unprocessed ON inbox(id) WHERE processed_at IS NULL;
    CREATE TABLE dead_letters (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        received_at TEXT NOT NULL,
        reason TEXT NOT NULL,
        content_type TEXT,
        body BLOB NOT NULL
    );
    CREATE TABLE incidents (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        incident_key TEXT NOT NULL UNIQUE,
        fingerprint TEXT NOT NULL,
        alertname TEXT NOT NULL,
        starts_at TEXT NOT NULL,
        status TEXT NOT NULL,
        labels TEXT NOT NULL,
        annotations TEXT NOT NULL,
        generator_url TEXT NOT NULL DEFAULT '',
        target TEXT,
        note TEXT,
        notices INTEGER NOT NULL DEFAULT 1,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        resolved_at TEXT,
        claimed_by TEXT,
        claimed_at TEXT
    );
    CREATE INDEX incidents_fingerprint ON incidents(fingerprint, id);
    CREATE TABLE executions (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        incident_id INTEGER REFERENCES incidents(id),
        playbook TEXT NOT NULL,
        target TEXT NOT NULL,
        state TEXT NOT NULL,
        outcome TEXT,
        scenario TEXT,
        dry_run INTEGER NOT NULL DEFAULT 0,
        replay_of INTEGER,
        alert TEXT NOT NULL,
        error TEXT,
        escalations TEXT NOT NULL DEFAULT '[]',
        created_at TEXT NOT NULL,
        started_at TEXT,
        finished_at TEXT
    );
    CREATE INDEX executions_state ON executions(state, id);
    CREATE INDEX executions_target ON executions(target, created_at);
    CREATE TABLE steps (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        execution_id INTEGER NOT NULL REFERENCES executions(id),
        position INTEGER NOT NULL,
        step_id TEXT NOT NULL,
        action TEXT NOT NULL,
        phase TEXT,
        status TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        started_at TEXT,
        duration_s REAL,
        outputs TEXT NOT NULL DEFAULT '{}',
        rendered_args TEXT NOT NULL DEFAULT '{}',
        error TEXT,
        note TEXT,
        UNIQUE(execution_id, step_id)
    );
    CREATE TABLE notifications (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        incident_id INTEGER,
        team TEXT NOT NULL,
        level TEXT NOT NULL,
        kind TEXT NOT NULL,
        rule TEXT,
        reason TEXT,
        status TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at TEXT,
        last_error TEXT,
        created_at TEXT NOT NULL,
        delivered_at TEXT,
        UNIQUE(incident_id, team, level, kind)
    );
    CREATE TABLE last_known_good (
        target TEXT PRIMARY KEY,
        image TEXT NOT NULL,
        config TEXT NOT NULL,
        recorded_at TEXT NOT NULL
    );
    CREATE TABLE settings (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    """,
    # 2: the notification outbox (remediator.escalation.outbox). Migration 1's notifications
    # table was never written to; it is replaced by one row per (dedup_key, kind) plus one
    # delivery row per channel, each with its own attempts and next attempt time.
    """
    DROP TABLE notifications;
    CREATE TABLE notifications (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        incident_id INTEGER REFERENCES incidents(id),
        kind TEXT NOT NULL,
        dedup_key TEXT NOT NULL,
        team TEXT NOT NULL,
        level TEXT NOT NULL,
        severity TEXT NOT NULL,
        rule TEXT,
        reason TEXT,
        message TEXT NOT NULL,
        status TEXT NOT NULL,
        status_reason TEXT,
        trigger_id INTEGER REFERENCES notifications(id),
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        UNIQUE(dedup_key, kind)
    );
    CREATE INDEX notifications_incident ON notifications(incident_id, kind);
    CREATE TABLE deliveries (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        notification_id INTEGER NOT NULL REFERENCES notifications(id),
        channel TEXT NOT NULL,
        channel_type TEXT NOT NULL,
        status TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at TEXT,
        last_error TEXT,
        detail TEXT,
        delivered_at TEXT,
        updated_at TEXT NOT NULL,
        UNIQUE(notification_id, channel)
    );
    CREATE INDEX deliveries_due ON deliveries(status, next_attempt_at);
    """,
    # 3: stability. An incident is fixed when an execution succeeds, closed once the service
    # stayed healthy for the stability window; a re-fire before that reopens it, and the
    # re-fire's own identity becomes an alias of the incident.
    """
    ALTER TABLE incidents ADD COLUMN fixed_at TEXT;
    ALTER TABLE incidents ADD COLUMN closed_at TEXT;
    ALTER TABLE incidents ADD COLUMN reopened INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE incident_aliases (
        incident_key TEXT PRIMARY KEY,
        incident_id INTEGER NOT NULL REFERENCES incidents(id)
    );
    """,
    # 4: an execution's end and what escalation must do about it are one commit. The
    # finished run's summary (its escalation requests, outcome, mode) is written with its
    # end; escalation clears it once its notifications are in the outbox, and picks up any
    # left after a crash. Rows finished before this migration were already handled.
    # A trigger records every criterion (rule) it told of (JSON list), so a later,
    # different one for the same key is sent as an update instead of dropped.
    """
    ALTER TABLE executions ADD COLUMN escalation_pending TEXT;
    CREATE INDEX executions_escalation_pending ON executions(id)
        WHERE escalation_pending IS NOT NULL;
    ALTER TABLE notifications ADD COLUMN criteria TEXT;
    """,
)


def iso(moment: datetime) -> str:
    """The store's timestamp text (UTC, microseconds, Z): sorts as it compares."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def utcnow() -> str:
    return iso(datetime.now(UTC))


def ago(delta: timedelta) -> str:
    """The store's timestamp of `delta` before now."""
    return iso(datetime.now(UTC) - delta)


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


class Store:
    """One write connection behind a lock (SQLite has one writer anyway), and one read
    connection per thread, so reads see WAL snapshots without waiting for writes."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            create_private(Path(self.path))  # SQLite gives its -wal/-shm files this mode too
        self._lock = threading.RLock()
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._instance_id: str | None = None
        try:
            self._db = self._connect()
            self._db.execute("PRAGMA journal_mode=WAL")
            self._migrate()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the store at {self.path}: {exc}") from exc

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None,
                             timeout=30)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA synchronous=FULL")
        db.execute("PRAGMA foreign_keys=ON")
        return db

    def _reader(self) -> sqlite3.Connection:
        reader: sqlite3.Connection | None = getattr(self._local, "db", None)
        if reader is None:
            if self.path == ":memory:":
                return self._db  # a second connection would be another database
            reader = self._local.db = self._connect()
            with self._lock:
                self._readers.append(reader)
        return reader

    def _migrate(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            with self.transaction() as db:
                for statement in script.split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(f"PRAGMA user_version={number}")

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        reader = self._reader()
        if reader is self._db:
            with self._lock:
                return self._read(reader, sql, params)
        return self._read(reader, sql, params)

    def query_in(self, sql: str, values: Sequence[Any], chunk: int = 500
                 ) -> list[dict[str, Any]]:
        """`sql` with each `{marks}` filled by placeholders for `values`, run over chunks of
        them (SQLite caps the parameters of one statement); the rows of every chunk."""
        rows: list[dict[str, Any]] = []
        uses = sql.count("{marks}")
        for start in range(0, len(values), chunk):
            part = list(values[start:start + chunk])
            rows += self.query(sql.format(marks=",".join("?" * len(part))), part * uses)
        return rows

    @staticmethod
    def _read(db: sqlite3.Connection, sql: str, params: Sequence[Any]) -> list[dict[str, Any]]:
        try:
            return [dict(row) for row in db.execute(sql, params).fetchall()]
        except sqlite3.Error as exc:
            raise StoreError(f"store read failed: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            for reader in self._readers:
                reader.close()
            self._readers.clear()
            self._db.close()

    def ping(self) -> bool:
        try:
            self.query("SELECT 1")
            return True
        except StoreError:
            return False

    # -- intake ---------------------------------------------------------------------------
    @staticmethod
    def insert_inbox(db: sqlite3.Connection, body: bytes, received_at: str) -> int:
        """One payload into the inbox, inside the caller's transaction."""
        cur = db.execute("INSERT INTO inbox(received_at, body) VALUES (?, ?)",
                         (received_at, body))
        return int(cur.lastrowid or 0)

    @staticmethod
    def insert_dead_letter(db: sqlite3.Connection, body: bytes, reason: str,
                           content_type: str | None) -> int:
        """One refused body, kept with its reason, inside the caller's transaction."""
        cur = db.execute("INSERT INTO dead_letters(received_at, reason, content_type, body) "
                         "VALUES (?, ?, ?, ?)", (utcnow(), reason, content_type, body))
        return int(cur.lastrowid or 0)

    def add_inbox(self, body: bytes) -> int:
        """Commit a webhook body; returns only once it is durable."""
        try:
            with self.transaction() as db:
                return self.insert_inbox(db, body, utcnow())
        except sqlite3.Error as exc:
            raise StoreError(f"could not store the webhook payload: {exc}") from exc

    def add_dead_letter(self, body: bytes, reason: str, content_type: str | None) -> int:
        try:
            with self.transaction() as db:
                return self.insert_dead_letter(db, body, reason, content_type)
        except sqlite3.Error as exc:
            raise StoreError(f"could not store the dead letter: {exc}") from exc

    def unprocessed_inbox(self, limit: int = 100) -> list[dict[str, Any]]:
        return self.query("SELECT id, body FROM inbox WHERE processed_at IS NULL "
                          "ORDER BY id LIMIT ?", (limit,))

    def inbox_depth(self) -> int:
        return int(self.query("SELECT COUNT(*) AS n FROM inbox WHERE processed_at IS NULL")[0]["n"])

    @property
    def instance_id(self) -> str:
        """This store's own random id, made once and kept. Notifications carry it in their
        dedup keys, so a new store's incident 1 is never taken for an older store's (a
        PagerDuty alert still open from before would swallow the new page). A store that
        already sent notifications before ids existed keeps its keys: "" (no id)."""
        if self._instance_id is None:
            with self.transaction() as db:
                if db.execute("SELECT 1 FROM settings WHERE key = 'instance_id'").fetchone() \
                        is None:
                    sent = db.execute("SELECT 1 FROM notifications LIMIT 1").fetchone()
                    db.execute("INSERT INTO settings(key, value) VALUES ('instance_id', ?)",
                               ("" if sent else secrets.token_hex(4),))
                self._instance_id = str(db.execute(
                    "SELECT value FROM settings WHERE key = 'instance_id'").fetchone()[0])
        return self._instance_id

    # -- settings -------------------------------------------------------------------------
    def get_setting(self, key: str, default: str | None = None) -> str | None:
        rows = self.query("SELECT value FROM settings WHERE key = ?", (key,))
        return str(rows[0]["value"]) if rows else default

    def set_setting(self, key: str, value: str) -> None:
        with self.transaction() as db:
            db.execute("INSERT INTO settings(key, value) VALUES (?, ?) "
                       "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (key, value))

    # -- incidents ------------------------------------------------------------------------
    def incident_by_key(self, db: sqlite3.Connection, key: str) -> dict[str, Any] | None:
        row = db.execute("SELECT * FROM incidents WHERE incident_key = ? UNION ALL "
                         "SELECT i.* FROM incident_aliases a JOIN incidents i "
                         "ON i.id = a.incident_id WHERE a.incident_key = ?",
                         (key, key)).fetchone()
        return dict(row) if row else None

    def reopenable(self, db: sqlite3.Connection, fingerprint: str) -> dict[str, Any] | None:
        """The latest incident of this alert that was fixed and is not closed yet."""
        row = db.execute("SELECT * FROM incidents WHERE fingerprint = ? AND fixed_at IS NOT "
                         "NULL AND closed_at IS NULL ORDER BY id DESC LIMIT 1",
                         (fingerprint,)).fetchone()
        return dict(row) if row else None

    def reopen(self, db: sqlite3.Connection, incident_id: int, new_key: str) -> None:
        db.execute("INSERT OR IGNORE INTO incident_aliases(incident_key, incident_id) "
                   "VALUES (?, ?)", (new_key, incident_id))
        db.execute("UPDATE incidents SET status = 'firing', reopened = reopened + 1, "
                   "notices = notices + 1, fixed_at = NULL, resolved_at = NULL, "
                   "updated_at = ? WHERE id = ?", (utcnow(), incident_id))

    def mark_fixed(self, incident_id: int) -> None:
        with self.transaction() as db:
            db.execute("UPDATE incidents SET fixed_at = ?, updated_at = ? WHERE id = ?",
                       (utcnow(), utcnow(), incident_id))

    def closable(self, before_iso: str) -> list[dict[str, Any]]:
        """Fixed and resolved incidents whose stability window ended before `before_iso`."""
        rows = self.query("SELECT * FROM incidents WHERE closed_at IS NULL AND fixed_at IS NOT "
                          "NULL AND status = 'resolved' AND fixed_at <= ? AND "
                          "resolved_at <= ?", (before_iso, before_iso))
        return [incident_view(row) for row in rows]

    def close_incident(self, incident_id: int) -> None:
        with self.transaction() as db:
            db.execute("UPDATE incidents SET closed_at = ?, updated_at = ? WHERE id = ? AND "
                       "closed_at IS NULL", (utcnow(), utcnow(), incident_id))

    def record_last_known_good(self, target: str, image: str, config: dict[str, Any]) -> None:
        with self.transaction() as db:
            db.execute("INSERT INTO last_known_good(target, image, config, recorded_at) "
                       "VALUES (?, ?, ?, ?) ON CONFLICT(target) DO UPDATE SET "
                       "image = excluded.image, config = excluded.config, "
                       "recorded_at = excluded.recorded_at", (target, image, dumps(config),
                                                              utcnow()))

    def last_known_good(self, target: str) -> dict[str, Any] | None:
        rows = self.query("SELECT * FROM last_known_good WHERE target = ?", (target,))
        if not rows:
            return None
        return {"image": rows[0]["image"], **json.loads(rows[0]["config"]),
                "recorded_at": rows[0]["recorded_at"]}

    def insert_incident(self, db: sqlite3.Connection, alert: dict[str, Any], key: str,
                        target: str | None, note: str | None) -> int:
        now = utcnow()
        labels = alert["labels"]
        cur = db.execute(
            "INSERT INTO incidents(incident_key, fingerprint, alertname, starts_at, status, "
            "labels, annotations, generator_url, target, note, created_at, updated_at) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (key, alert["fingerprint"], labels.get("alertname", ""), alert["startsAt"],
             alert["status"], dumps(labels), dumps(alert["annotations"]),
             alert.get("generatorURL", ""), target, note, now, now))
        return int(cur.lastrowid or 0)

    def touch_incident(self, db: sqlite3.Connection, incident_id: int, status: str) -> None:
        now = utcnow()
        resolved_at = now if status == "resolved" else None
        db.execute("UPDATE incidents SET notices = notices + 1, status = ?, updated_at = ?, "
                   "resolved_at = COALESCE(?, resolved_at) WHERE id = ?",
                   (status, now, resolved_at, incident_id))

    def incident(self, incident_id: int) -> dict[str, Any] | None:
        rows = self.query("SELECT * FROM incidents WHERE id = ?", (incident_id,))
        return incident_view(rows[0]) if rows else None

    def incidents(self, limit: int = 50) -> list[dict[str, Any]]:
        rows = self.query("SELECT * FROM incidents ORDER BY id DESC LIMIT ?", (limit,))
        return [incident_view(row) for row in rows]

    # -- executions -----------------------------------------------------------------------
    def insert_execution(self, db: sqlite3.Connection, incident_id: int | None, playbook: str,
                         target: str, alert: dict[str, Any], dry_run: bool,
                         replay_of: int | None = None) -> int:
        cur = db.execute(
            "INSERT INTO executions(incident_id, playbook, target, state, dry_run, replay_of, "
            "alert, created_at) VALUES (?,?,?,?,?,?,?,?)",
            (incident_id, playbook, target, "pending", int(dry_run), replay_of, dumps(alert),
             utcnow()))
        return int(cur.lastrowid or 0)

    def start_execution(self, execution_id: int, dry_run: bool | None = None, *,
                        from_state: str = "pending") -> bool:
        """Claim an execution and mark it running: only if it is still in `from_state`
        (what the dispatcher read; `running` to resume one a crash interrupted). False when
        something else took it first (cancelled by a claim, started elsewhere): then it
        must not run. On its first start, `dry_run` (when given) records the mode it runs
        in, so a resume after a crash keeps it (the SET sees the old row)."""
        with self.transaction() as db:
            cur = db.execute("UPDATE executions SET state = 'running', dry_run = CASE WHEN "
                             "started_at IS NULL AND ? IS NOT NULL THEN ? ELSE dry_run END, "
                             "started_at = COALESCE(started_at, ?) WHERE id = ? AND state = ?",
                             (dry_run, dry_run, utcnow(), execution_id, from_state))
            return cur.rowcount == 1

    def record_step(self, execution_id: int, position: int, step: dict[str, Any]) -> None:
        """Upsert one step's result (a step is written when it starts and when it ends)."""
        with self.transaction() as db:
            db.execute(
                "INSERT INTO steps(execution_id, position, step_id, action, phase, status, "
                "attempts, started_at, duration_s, outputs, rendered_args, error, note) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT(execution_id, step_id) DO UPDATE "
                "SET status=excluded.status, attempts=excluded.attempts, "
                "duration_s=excluded.duration_s, outputs=excluded.outputs, "
                "rendered_args=excluded.rendered_args, error=excluded.error, note=excluded.note",
                (execution_id, position, step["id"], step["action"], step.get("phase"),
                 step["status"], step.get("attempts", 0), step.get("started_at"),
                 step.get("duration_s"), capped(redact_data(step.get("outputs", {}))),
                 capped(redact_data(step.get("rendered_args", {}))),
                 redact_data(step.get("error")), step.get("note")))

    def finish_execution(self, execution_id: int, state: str, outcome: str,
                         scenario: str | None, error: str | None,
                         escalations: list[dict[str, Any]],
                         pending: dict[str, Any] | None = None) -> None:
        """Store an execution's end. `pending` (the run's summary, for escalation) is
        committed with it: escalation reads it from here, so a crash right after this
        commit cannot lose a page (see pending_escalations)."""
        with self.transaction() as db:
            db.execute("UPDATE executions SET state = ?, outcome = ?, scenario = ?, error = ?, "
                       "escalations = ?, finished_at = ?, escalation_pending = ? WHERE id = ?",
                       (state, outcome, scenario, error, dumps(escalations), utcnow(),
                        None if pending is None else dumps(pending), execution_id))

    def pending_escalations(self) -> list[tuple[int, dict[str, Any]]]:
        """Finished executions whose escalation is not yet in the outbox, oldest first."""
        rows = self.query("SELECT id, escalation_pending FROM executions "
                          "WHERE escalation_pending IS NOT NULL ORDER BY id")
        return [(int(row["id"]), json.loads(row["escalation_pending"])) for row in rows]

    def escalation_handled(self, execution_id: int) -> None:
        """Escalation put what this execution's end calls for into the outbox."""
        with self.transaction() as db:
            db.execute("UPDATE executions SET escalation_pending = NULL WHERE id = ?",
                       (execution_id,))

    def executions_in_state(self, *states: str) -> list[dict[str, Any]]:
        marks = ",".join("?" * len(states))
        return self.query(f"SELECT * FROM executions WHERE state IN ({marks}) ORDER BY id",
                          states)

    def steps(self, execution_id: int) -> list[dict[str, Any]]:
        rows = self.query("SELECT * FROM steps WHERE execution_id = ? ORDER BY position",
                          (execution_id,))
        return [step_view(row) for row in rows]

    def execution(self, execution_id: int) -> dict[str, Any] | None:
        rows = self.query("SELECT * FROM executions WHERE id = ?", (execution_id,))
        if not rows:
            return None
        return execution_view(rows[0], self.steps(execution_id))

    def executions(self, limit: int = 50) -> list[dict[str, Any]]:
        rows = self.query("SELECT * FROM executions ORDER BY id DESC LIMIT ?", (limit,))
        return [execution_view(row, self.steps(int(row["id"]))) for row in rows]

    def executions_for(self, incident_id: int) -> list[dict[str, Any]]:
        rows = self.query("SELECT * FROM executions WHERE incident_id = ? ORDER BY id",
                          (incident_id,))
        return [execution_view(row, self.steps(int(row["id"]))) for row in rows]

    def add_replay(self, execution_id: int, dry_run: bool) -> int | None:
        """Queue a new execution repeating `execution_id` (same alert, playbook, target)."""
        with self.transaction() as db:
            row = db.execute("SELECT * FROM executions WHERE id = ?", (execution_id,)).fetchone()
            if row is None:
                return None
            return self.insert_execution(db, row["incident_id"], row["playbook"], row["target"],
                                         json.loads(row["alert"]), dry_run,
                                         replay_of=execution_id)

    def prune(self, before_iso: str) -> int:
        """Delete finished executions (and their steps) and processed payloads older than
        `before_iso`; incidents, dead letters and notifications are kept."""
        with self.transaction() as db:
            old = "SELECT id FROM executions WHERE state IN ('finished', 'cancelled') AND " \
                  "COALESCE(finished_at, created_at) < ?"
            db.execute(f"DELETE FROM steps WHERE execution_id IN ({old})", (before_iso,))
            gone = db.execute("DELETE FROM executions WHERE state IN ('finished', 'cancelled') "
                              "AND COALESCE(finished_at, created_at) < ?",
                              (before_iso,)).rowcount
            db.execute("DELETE FROM inbox WHERE processed_at IS NOT NULL AND processed_at < ?",
                       (before_iso,))
        return int(gone)

    def dead_letters(self, limit: int = 50) -> list[dict[str, Any]]:
        rows = self.query("SELECT * FROM dead_letters ORDER BY id DESC LIMIT ?", (limit,))
        return [{"id": r["id"], "received_at": r["received_at"], "reason": r["reason"],
                 "content_type": r["content_type"],
                 "body": bytes(r["body"]).decode("utf-8", "replace")[:4096]} for r in rows]


def incident_view(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"], "fingerprint": row["fingerprint"], "startsAt": row["starts_at"],
        "status": row["status"], "labels": json.loads(row["labels"]),
        "annotations": json.loads(row["annotations"]), "target": row["target"],
        "alertname": row["alertname"], "note": row["note"], "notices": row["notices"],
        "generatorURL": row["generator_url"], "created_at": row["created_at"],
        "updated_at": row["updated_at"], "resolved_at": row["resolved_at"],
        "claimed_by": row["claimed_by"], "claimed_at": row["claimed_at"],
        "fixed_at": row.get("fixed_at"), "closed_at": row.get("closed_at"),
        "reopened": row.get("reopened", 0),
    }


def step_view(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["step_id"], "action": row["action"], "phase": row["phase"],
        "status": row["status"], "attempts": row["attempts"], "started_at": row["started_at"],
        "duration_s": row["duration_s"], "outputs": json.loads(row["outputs"]),
        "rendered_args": json.loads(row["rendered_args"]), "error": row["error"],
        "note": row["note"],
    }


def execution_view(row: dict[str, Any], steps: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": row["id"], "incident_id": row["incident_id"], "playbook": row["playbook"],
        "target": row["target"], "state": row["state"], "outcome": row["outcome"],
        "scenario": row["scenario"], "dry_run": bool(row["dry_run"]),
        "replay_of": row["replay_of"], "error": row["error"],
        "escalations": json.loads(row["escalations"]), "created_at": row["created_at"],
        "started_at": row["started_at"], "finished_at": row["finished_at"], "steps": steps,
    }
