"""Numbered schema migrations, applied at start; the number reached is recorded in the
database (SQLite's ``user_version``). Migration N is MIGRATIONS[N-1]; a store made by any
earlier version (the walking skeleton's 1, the outbox's 2, stability's 3, issue 16's 4,
replicas' 5)
opens by applying the ones it lacks, each in its own transaction. Never edit a shipped
migration: add the next one.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["MIGRATIONS", "SCHEMA_VERSION"]

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
    # 5: replicas (issue 19). A running execution is held under a lease (its runner's id
    # and the moment the lease expires, renewed while it runs): another replica resumes it
    # only once the lease expired. A delivery marked sending records who claimed it and
    # until when, so a live claim is never sent twice. Named leases ("leader",
    # "target:<name>") are rows of `leases`. Rows from before have no owner: expired.
    """
    ALTER TABLE executions ADD COLUMN lease_owner TEXT;
    ALTER TABLE executions ADD COLUMN lease_until TEXT;
    ALTER TABLE deliveries ADD COLUMN claim_owner TEXT;
    ALTER TABLE deliveries ADD COLUMN claim_until TEXT;
    CREATE TABLE leases (
        name TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        expires_at TEXT NOT NULL
    );
    """,
)

SCHEMA_VERSION = len(MIGRATIONS)
"""The schema version this code writes and reads."""
