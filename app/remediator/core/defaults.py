"""Code defaults: the first layer of configuration (then the YAML file, then REMEDIATOR_ env).

Every default Remediator relies on lives here as a named constant with a one-line docstring,
so a reader can find what happens when a key is left out.
"""

from __future__ import annotations

__all__ = [
    "DB_ENV",
    "DEFAULT_ALERTMANAGER_URL",
    "DEFAULT_CONCURRENCY",
    "DEFAULT_CONFIG_PATH",
    "DEFAULT_DB_PATH",
    "DEFAULT_ESCALATION_LEVEL",
    "DEFAULT_ESCALATION_PATH",
    "DEFAULT_ESCALATION_TEAM",
    "DEFAULT_HOST",
    "DEFAULT_HTTP_CHECK_INTERVAL_S",
    "DEFAULT_MAX_RUNS_PER_HOUR",
    "DEFAULT_MODE",
    "DEFAULT_MONITORING_USERNAME",
    "DEFAULT_PLAYBOOKS_DIR",
    "DEFAULT_PLAYBOOK_TIMEOUT_S",
    "DEFAULT_PORT",
    "DEFAULT_PROMETHEUS_URL",
    "DEFAULT_RETRY_DELAY_S",
    "DEFAULT_STABILITY_WINDOW_S",
    "DEFAULT_STEP_TIMEOUT_S",
    "DEFAULT_WEBHOOK_TOKEN_ENV",
    "DEFAULT_WRITE_PATHS",
    "DELIVERY_CLAIM_S",
    "ENV_PREFIX",
    "EXECUTION_LEASE_S",
    "LEADER_LEASE_S",
    "LEASE_RENEW_FRACTION",
    "MAX_ARCHIVE_BYTES",
    "MAX_HTTP_BODY_BYTES",
    "MAX_LOG_BYTES",
    "MAX_STEP_RETRIES",
    "PG_CONNECT_TIMEOUT_S",
    "PG_PING_TIMEOUT_S",
    "PG_POOL_MAX",
    "PG_POOL_TIMEOUT_S",
    "PG_RECONNECT_TIMEOUT_S",
    "REPLICA_ID_ENV",
    "ROLES",
]

ENV_PREFIX = "REMEDIATOR_"
"""Prefix of the environment variables that override config keys (REMEDIATOR_<KEY>)."""

DEFAULT_CONFIG_PATH = "config/remediator.yml"
"""Config file read when none is given, relative to the working directory."""

DEFAULT_PLAYBOOKS_DIR = "playbooks"
"""Directory of playbook YAML files, relative to the working directory."""

DEFAULT_DB_PATH = "remediator.db"
"""SQLite store file, relative to the working directory."""

DB_ENV = "REMEDIATOR_DB"
"""Environment variable naming the store when no --db is given: a SQLite path,
``sqlite:///path`` or ``postgresql://...`` (before the config's db_path)."""

PG_CONNECT_TIMEOUT_S = 3
"""Seconds to wait for a PostgreSQL connection (libpq's connect_timeout)."""

PG_POOL_TIMEOUT_S = 5.0
"""Seconds an operation waits for a pooled PostgreSQL connection before it raises
StoreError (the webhook then answers 503 and Alertmanager retries)."""

PG_PING_TIMEOUT_S = 1.5
"""How long a store's ping() waits for a PostgreSQL connection before it answers False."""

PG_RECONNECT_TIMEOUT_S = 10.0
"""How long the pool retries one lost PostgreSQL connection before it drops it (the next
request grows the pool again): keeps its back-off short, so the store is back within
seconds of the database."""

PG_POOL_MAX = 12
"""Connections one process keeps to PostgreSQL at most (webhook threads, worker, timers)."""

DEFAULT_HOST = "127.0.0.1"
"""Address `remediator serve` listens on: loopback unless told otherwise."""

DEFAULT_PORT = 9096
"""Port `remediator serve` listens on."""

DEFAULT_ALERTMANAGER_URL = "http://127.0.0.1:9093"
"""Alertmanager base URL (silences, alert status)."""

DEFAULT_PROMETHEUS_URL = "http://127.0.0.1:9090"

DEFAULT_MONITORING_USERNAME = "monitoring"
"""The basic-auth user Prometheus and Alertmanager accept (their web config, `make up`)."""
"""Prometheus base URL for `prometheus.query` steps."""

DEFAULT_WEBHOOK_TOKEN_ENV = "REMEDIATOR_WEBHOOK_TOKEN"
"""Name of the environment variable holding the webhook bearer token (never in the file)."""

DEFAULT_MODE = "act"
"""`act` runs fixes; `observe` diagnoses and records only (the kill switch)."""

DEFAULT_MAX_RUNS_PER_HOUR = 5
"""Executions allowed per target per hour before Remediator escalates instead of looping."""

DEFAULT_CONCURRENCY = 2
"""Worker threads draining the inbox (still one execution per target at a time)."""

DEFAULT_STABILITY_WINDOW_S = 120.0
"""Seconds a fixed target must stay healthy before its image/config count as last-known-good."""

DEFAULT_ESCALATION_PATH = "config/escalation.yml"
"""Escalation policy file (teams, channels, the runbook's criteria)."""

DEFAULT_STEP_TIMEOUT_S = 60.0
"""Seconds a step may run when it sets no `timeout`."""

DEFAULT_RETRY_DELAY_S = 5.0
"""Seconds between a step's attempts when it sets `retries` but no `delay`."""

MAX_STEP_RETRIES = 100
"""Upper bound on a step's `retries`, so a typo cannot make a step retry for days."""

DEFAULT_PLAYBOOK_TIMEOUT_S = 600.0
"""Seconds a whole playbook may run: the runbook escalates once the service is down 10 min."""

DEFAULT_ESCALATION_TEAM = "ml-team-lead"
"""Team asked when a playbook escalates without naming one: the runbook's owner."""

DEFAULT_ESCALATION_LEVEL = "notify"
"""Level of an escalation request that names none (config/escalation.yml: notify | page)."""

DEFAULT_HTTP_CHECK_INTERVAL_S = 1.0
"""Seconds between the attempts of an `http.check` that sets `retries`."""

DEFAULT_WRITE_PATHS = ("/app/models", "/app/config")
"""Where a target's files may be written, chowned or chmodded when its config names no
`write_paths`: the app's model and config folders, plus the target's backup_path and the
folders of its config_files (core/targets.py: Target.write_prefixes)."""

MAX_LOG_BYTES = 1 << 20
"""Bytes of `docker logs` read from a target per step (the newest kept; the rest counted)."""

MAX_ARCHIVE_BYTES = 1 << 28
"""Bytes of one file docker.copy moves out of and back into a target (a model, not a disk)."""

MAX_HTTP_BODY_BYTES = 1 << 20
"""Bytes of an http.check / prometheus.query answer read (the rest is cut, and said so)."""

EXECUTION_LEASE_S = 15.0
"""Seconds a replica's claim on a running execution (and on its target) lasts unless renewed:
a replica that dies mid-run has its execution resumed by another within this (+ one poll)."""

LEADER_LEASE_S = 15.0
"""Seconds the leader lease lasts unless renewed: when the leader dies, another replica runs
the escalation timer, reconciliation and housekeeping within this (+ one renewal)."""

LEASE_RENEW_FRACTION = 1 / 3
"""Leases are renewed every this fraction of their length (15 s leases: every 5 s)."""

DELIVERY_CLAIM_S = 120.0
"""Seconds a replica's claim on a notification delivery it is sending lasts: longer than any
attempt (channel timeouts are ~10 s); a replica that dies mid-send has it retried after."""

REPLICA_ID_ENV = "REMEDIATOR_REPLICA_ID"
"""Environment variable naming this replica (default: host name and port, stable across
restarts, so a restarted replica takes back its own leases at once)."""

ROLES = ("all", "intake", "worker")
"""What one `remediator serve` does: `all` everything (the default); `intake` the webhook
only (stores alerts; no worker, no leader duties, no Docker); `worker` executions, the
outbox and leader candidacy, with no webhook."""
