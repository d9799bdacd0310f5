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
    "DELIVERY_RECOVER_S",
    "DOCKER_START_ALLOWANCE_S",
    "DOCKER_STOP_TIMEOUT_S",
    "ENGINE_ACTION_TIMEOUT_S",
    "ENGINE_PING_TIMEOUT_S",
    "ENV_PREFIX",
    "ESCALATION_PASS_GAP_FACTOR",
    "ESCALATION_POLL_S",
    "EXECUTION_LEASE_S",
    "EXEC_KILL_CONFIRM_S",
    "GIL_SWITCH_INTERVAL_S",
    "HOUSEKEEPING_INTERVAL_S",
    "HTTP_MAX_REDIRECTS",
    "HTTP_REQUEST_TIMEOUT_S",
    "INBOX_BATCH_MAX_PAYLOADS",
    "INBOX_SUBMIT_TIMEOUT_S",
    "INBOX_WRITER_IDLE_S",
    "INTAKE_CHUNK_PAYLOADS",
    "LEADER_LEASE_S",
    "LEADER_POLL_S",
    "LEASE_RENEW_FRACTION",
    "LOOP_ERROR_BACKOFF_MAX_S",
    "LOOP_STOP_TIMEOUT_S",
    "MAX_ALERT_FOR_S",
    "MAX_ARCHIVE_BYTES",
    "MAX_CLAIMANT_CHARS",
    "MAX_FILE_BYTES",
    "MAX_HTTP_BODY_BYTES",
    "MAX_LOG_BYTES",
    "MAX_RETRY_AFTER_S",
    "MAX_STEP_RETRIES",
    "MAX_WEBHOOK_BODY_BYTES",
    "NOTIFY_GIVE_UP_S",
    "NOTIFY_RETRY_BASE_S",
    "NOTIFY_RETRY_CAP_S",
    "NOTIFY_TIMEOUTS_S",
    "OUTBOX_MAX_IDLE_S",
    "OUTBOX_PARALLEL_CHANNELS",
    "PG_CONNECT_TIMEOUT_S",
    "PG_PING_TIMEOUT_S",
    "PG_POOL_MAX",
    "PG_POOL_TIMEOUT_S",
    "PG_RECONNECT_TIMEOUT_S",
    "RECONCILE_INTERVAL_S",
    "REPLICA_ID_ENV",
    "REPORT_OUTPUT_LINES",
    "RETENTION_DAYS",
    "ROLES",
    "SWARM_POLL_S",
    "SWARM_REPLICA_WAIT_SHARE",
    "UNPARK_WITHIN_S",
    "WORKER_COALESCE_S",
    "WORKER_POLL_INTERVAL_S",
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
"""Prometheus base URL for `prometheus.query` steps."""

DEFAULT_MONITORING_USERNAME = "monitoring"
"""The basic-auth user Prometheus and Alertmanager accept (their web config, `make up`)."""

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

LEADER_POLL_S = 1.0
"""Seconds a replica that is not the leader waits before asking again whether it is (its
reconciliation loop: a new leader reconciles at once)."""

LEASE_RENEW_FRACTION = 1 / 3
"""Leases are renewed every this fraction of their length (15 s leases: every 5 s)."""

DELIVERY_CLAIM_S = 120.0
"""Seconds a replica's claim on a notification delivery it is sending lasts: longer than any
attempt (channel timeouts are ~10 s); a replica that dies mid-send has it retried after."""

DELIVERY_RECOVER_S = 5.0
"""How often the leader makes deliveries due again whose sender's claim expired (a replica
that died mid-send)."""

REPLICA_ID_ENV = "REMEDIATOR_REPLICA_ID"
"""Environment variable naming this replica (default: host name and port, stable across
restarts, so a restarted replica takes back its own leases at once)."""

ROLES = ("all", "intake", "worker")
"""What one `remediator serve` does: `all` everything (the default); `intake` the webhook
only (stores alerts; no worker, no leader duties, no Docker); `worker` executions, the
outbox and leader candidacy, with no webhook."""
LOOP_ERROR_BACKOFF_MAX_S = 30.0
"""Longest a background loop waits after rounds that failed in a row (unless woken)."""

LOOP_STOP_TIMEOUT_S = 10.0
"""Seconds stopping a background loop waits for its round in flight to end."""

# -- tuning: loops, intake, HTTP, Docker, notifications (moved here from their modules) --

WORKER_POLL_INTERVAL_S = 0.5
"""Seconds the worker sleeps when nothing woke it."""

RETENTION_DAYS = 30
"""Days finished executions and processed payloads are kept."""

HOUSEKEEPING_INTERVAL_S = 5.0
"""Seconds between checks for incidents whose stability window has passed."""

WORKER_COALESCE_S = 0.05
"""Seconds the worker lets a burst of webhooks gather before draining them together."""

INTAKE_CHUNK_PAYLOADS = 32
"""Payloads processed per transaction: short, so webhook commits are not kept waiting."""

MAX_WEBHOOK_BODY_BYTES = 1 << 20
"""Largest webhook body accepted (413 above)."""

MAX_CLAIMANT_CHARS = 200
"""Longest claimant name the claim API accepts."""

REPORT_OUTPUT_LINES = 12
"""Lines of a step's output shown in the report."""

GIL_SWITCH_INTERVAL_S = 0.0005
"""GIL switch interval in the serving process (make bench-ingest: p99 at 1 sender ~halved)."""

RECONCILE_INTERVAL_S = 180.0
"""Seconds between two reconciliations with Alertmanager."""

HTTP_REQUEST_TIMEOUT_S = 5.0
"""Seconds one HTTP request of a check may take."""

CLI_REQUEST_TIMEOUT_S = 10.0
"""Seconds a CLI command waits for the running `remediator serve` to answer (replay)."""

HTTP_MAX_REDIRECTS = 3
"""Redirects an http.check follows, each only within the target's base_url."""

ENGINE_ACTION_TIMEOUT_S = 60.0
"""Read timeout of an engine's API calls (the SDK's default is 60s too)."""

ENGINE_PING_TIMEOUT_S = 3.0
"""Connect and ping timeout: /readyz and /metrics must not hang on a silent host."""

INBOX_BATCH_MAX_PAYLOADS = 256
"""Most webhook payloads the inbox writer commits in one transaction."""

INBOX_WRITER_IDLE_S = 1.0
"""Seconds the inbox writer sleeps when no submit woke it (a submit always wakes it)."""

INBOX_SUBMIT_TIMEOUT_S = 30.0
"""Seconds a webhook request waits for its commit before answering 503 (Alertmanager retries)."""

SWARM_POLL_S = 0.5
"""Seconds between looks at a Swarm rollout in progress."""

SWARM_REPLICA_WAIT_SHARE = 0.5
"""Share of a step's timeout spent waiting for a replica Swarm is replacing to run."""

NOTIFY_TIMEOUTS_S = (5.0, 10.0)
"""(connect, read) seconds of a notification request: a hung endpoint must not hold the
outbox for long."""

DOCKER_STOP_TIMEOUT_S = 10
"""Seconds docker.restart waits for a clean stop before SIGKILL."""

UNPARK_WITHIN_S = 3600.0
"""A container parked by an interrupted docker.recreate this recently is given its name back."""

DOCKER_START_ALLOWANCE_S = 1.0
"""Seconds of a step's time left kept for the engine to start a container after a stop."""

EXEC_KILL_CONFIRM_S = 5.0
"""Seconds a timed-out exec is given to stop after SIGKILL before it is reported alive."""

MAX_FILE_BYTES = 1 << 20
"""Largest file docker.read_file and docker.put_file handle (config files, not models)."""

OUTBOX_MAX_IDLE_S = 5.0
"""Longest the outbox dispatcher sleeps without being woken (rows added by another process)."""

OUTBOX_PARALLEL_CHANNELS = 4
"""Notification channels attempted at the same time; a slow one never holds the others."""

ESCALATION_POLL_S = 1.0
"""How often the escalation timer looks for store changes it was not told about (intake,
CLI claim)."""

ESCALATION_PASS_GAP_FACTOR = 9.0
"""An escalation pass triggered only by store changes waits this many times the last
pass's duration."""

MAX_ALERT_FOR_S = 300.0
"""The most a ``for`` annotation may move an incident's start back (seconds): 5 minutes,
half of the 10 minutes that page, so a stray value cannot page on the alert's arrival."""

NOTIFY_GIVE_UP_S = 3600.0
"""A notification still failing (429, 5xx, network) this long after it was accepted fails."""

NOTIFY_RETRY_BASE_S = 2.0
"""First retry of a notification waits between 1 and 2 seconds."""

NOTIFY_RETRY_CAP_S = 300.0
"""No computed notification retry wait is longer than five minutes."""

MAX_RETRY_AFTER_S = 3600.0
"""The longest ``Retry-After`` honoured; longer values are clamped to this."""

ESCALATION_RETRY_FAILED_S = 30.0
"""Seconds before an incident (or finished execution) whose escalation raised is tried again."""
