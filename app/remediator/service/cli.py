"""`remediator`: serve the webhook, validate and run playbooks, inspect what happened."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from remediator.core import defaults
from remediator.errors import RemediatorError, Unreachable
from remediator.service.cli_engine import ROW_ID, db_option, no_password

__all__ = ["main"]


class _Commands(click.Group):
    """The `remediator` group: a domain error no command caught is still one clear line
    (what and where), never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except RemediatorError as exc:
            fail(str(exc))


@click.group(cls=_Commands)
def main() -> None:
    """Remediator: runs the model-load-failure runbook by itself."""


def fail(message: str) -> NoReturn:
    click.echo(f"remediator: {message}", err=True)
    sys.exit(2)


def load_cfg(path: Path | None) -> Any:
    from remediator.core.config import load_config

    try:
        return load_config(path)
    except RemediatorError as exc:
        fail(str(exc))


@main.command()
@click.option("--host", default=None, help="Listen address (default 127.0.0.1).")
@click.option("--port", default=None, type=int, help="Listen port (default 9096).")
@db_option(None, fallback="the config's db_path")
@click.option("--playbooks", "playbooks_dir", type=click.Path(path_type=Path), default=None)
@click.option("--config", "config_path", type=click.Path(path_type=Path),
              default=Path(defaults.DEFAULT_CONFIG_PATH), show_default=True)
@click.option("--dry-run", is_flag=True, help="Diagnose and record; never mutate.")
@click.option("--insecure-no-auth", is_flag=True, help="Accept requests without credentials.")
@click.option("--threads", default=8, show_default=True, type=int)
@click.option("--log-format", type=click.Choice(["json", "text"]), default="json",
              show_default=True, help="json: one object per line with incident/execution ids.")
@click.option("--role", type=click.Choice(list(defaults.ROLES)), default="all",
              show_default=True,
              help="all: everything. intake: the webhook only (stores alerts; no worker, no "
                   "Docker). worker: executions, notifications and leader duties; its "
                   "webhook answers 404 (point Alertmanager at all/intake replicas).")
@click.option("--replica-id", default=None, envvar=defaults.REPLICA_ID_ENV,
              help="This replica's name in the store's leases (default: host name:port). "
                   "Keep it across restarts: a restarted replica takes its own leases back "
                   f"at once. [env {defaults.REPLICA_ID_ENV}]")
def serve(host: str | None, port: int | None, db_path: str | None,
          playbooks_dir: Path | None, config_path: Path, dry_run: bool,
          insecure_no_auth: bool, threads: int, log_format: str, role: str,
          replica_id: str | None) -> None:
    """Receive Alertmanager webhooks and remediate (production server: gunicorn).

    \b
    Replicas: any number of `remediator serve` on one PostgreSQL database (--db
    postgresql://...) act as one Remediator: each execution runs once (a lease, taken over
    when its replica dies), one execution per target at a time, one replica leads
    (escalation timer, reconciliation, housekeeping). A SQLite store takes one serve.
    """
    from remediator.service.server import run_server

    config = load_cfg(config_path)
    token = config.webhook_token
    if token is None and not insecure_no_auth:
        fail(f"no webhook credentials: set {config.webhook_token_env} (the token Alertmanager "
             "sends as Bearer), or start with --insecure-no-auth for a local trial")
    from remediator.adapters.store_lock import lock_store
    from remediator.logs import configure
    from remediator.service.server import check_setup
    from remediator.store import is_postgres

    db_path = db_path or config.db_path
    if role != "all" and not is_postgres(db_path):
        fail(f"--role {role} splits the work between replicas, and a SQLite store takes one "
             f"`remediator serve` ({db_path}): use --role all, or a PostgreSQL store the "
             "replicas share (--db postgresql://...)")
    playbooks_dir = playbooks_dir or Path(config.playbooks_dir)
    try:  # in gunicorn's worker the same error would be a traceback and "failed to boot"
        # One serve per SQLite file, held until this process exits; replicas share a
        # PostgreSQL database (leases in the store keep them from doing the same work).
        lock = None if is_postgres(db_path) else lock_store(sqlite_file(db_path))
        check_setup(config, db_path=db_path, playbooks_dir=playbooks_dir)
    except RemediatorError as exc:
        fail(f"cannot start: {exc}")
    _HELD.append(lock)
    configure(os.environ.get("LOG_LEVEL", "INFO"), log_format)
    run_server(config, host=host or config.host, port=port or config.port, db_path=db_path,
               playbooks_dir=playbooks_dir, token=None if insecure_no_auth else token,
               dry_run=dry_run, threads=threads, role=role, replica_id=replica_id)


_HELD: list[Any] = []
"""The store lock `serve` holds for the life of the process."""


@main.group()
def executions() -> None:
    """List executions or show one, from the store."""


def sqlite_file(location: str) -> Path:
    from remediator.store import sqlite_path

    return Path(sqlite_path(location))


def open_store(db_path: str) -> Any:
    """The store `remediator serve` keeps at `db_path`; fails clearly when there is none."""
    from remediator.store import display, is_postgres
    from remediator.store import open_store as open_existing

    if not is_postgres(db_path):
        file = sqlite_file(db_path)
        if not file.exists():
            fail(f"no store at {file} (pass --db, the file `remediator serve` uses)")
        if file.is_dir():
            fail(f"{file} is a directory, not a store (pass --db, the file `remediator "
                 "serve` uses)")
    try:
        return open_existing(db_path)
    except RemediatorError as exc:
        what = "database" if is_postgres(db_path) else "file"
        fail(f"{exc} (is {display(db_path)} the {what} `remediator serve` uses?)")


@executions.command("list")
@db_option()
@click.option("--limit", default=20, show_default=True, type=ROW_ID)
def executions_list(db_path: str, limit: int) -> None:
    for record in open_store(db_path).executions(limit):
        ex = record.view()
        click.echo(f"{ex['id']:>5}  {ex['created_at'][:19]}  {ex['playbook']:<24} "
                   f"{ex['target']:<12} {ex['state']:<10} {ex['outcome'] or '-':<10} "
                   f"{ex['scenario'] or ''}")


@executions.command("show")
@click.argument("execution_id", type=ROW_ID)
@db_option()
def executions_show(execution_id: int, db_path: str) -> None:
    found = open_store(db_path).execution(execution_id)
    if found is None:
        fail(f"no execution {execution_id} in {_shown(db_path)}")
    click.echo(json.dumps(found.view(), indent=2, sort_keys=True))


@main.command()
@click.argument("incident_id", type=ROW_ID)
@db_option()
def report(incident_id: int, db_path: str) -> None:
    """Print a Markdown report of an incident: timeline, diagnosis, actions, outcome."""
    from remediator.service.report import render_report

    store = open_store(db_path)
    incident = store.incident(incident_id)
    if incident is None:
        fail(f"no incident {incident_id} in {_shown(db_path)}")
    click.echo(render_report(incident.view(), [ex.view() for ex in
                                               store.executions_for(incident_id)]), nl=False)


@main.command()
@click.argument("execution_id", type=ROW_ID)
@click.option("--dry-run", is_flag=True, help="Diagnose and record what fixes would do.")
@click.option("--url", default=f"http://127.0.0.1:{defaults.DEFAULT_PORT}", show_default=True,
              help="The running `remediator serve`.")
@click.option("--config", "config_path", type=click.Path(path_type=Path),
              default=Path(defaults.DEFAULT_CONFIG_PATH), show_default=True,
              help="The server's config: its webhook_token_env names the token's variable.")
def replay(execution_id: int, dry_run: bool, url: str, config_path: Path) -> None:
    """Run an execution's playbook again, on the running server (token from the variable
    the config's webhook_token_env names)."""
    from remediator.adapters.http import HttpClient

    # Without --config and without the default file, defaults and environment still name
    # the variable (REMEDIATOR_WEBHOOK_TOKEN), as before there was a --config.
    implicit = config_path == Path(defaults.DEFAULT_CONFIG_PATH) and not config_path.exists()
    config = load_cfg(None if implicit else config_path)
    token = config.webhook_token or ""
    try:
        resp = HttpClient().call(
            "POST", f"{url.rstrip('/')}/api/v1/executions/{execution_id}/replay",
            params={"dry_run": str(dry_run).lower()}, timeout=defaults.CLI_REQUEST_TIMEOUT_S,
            headers={"Authorization": f"Bearer {token}"})
    except Unreachable as exc:
        fail(f"cannot reach {url}: {exc}")
        return
    if resp.status_code == 401:
        fail(f"replay refused (401): the token is read from ${config.webhook_token_env} "
             f"(webhook_token_env in {config.source or 'the defaults'}); set it to the "
             "server's token")
    if resp.status_code != 202:
        fail(f"replay refused ({resp.status_code}): {resp.text.strip()}")
    body = resp.json()
    click.echo(f"queued execution {body['execution_id']} (replay of {execution_id}"
               f"{', dry run' if dry_run else ''}); see: remediator executions show "
               f"{body['execution_id']}")


def _switch(db_path: str, paused: bool) -> None:
    """The kill switch: never silent. It fails when there is no store to switch, and says
    which store it switched and how that store now stands."""
    store = open_store(db_path)
    try:
        store.set_setting("paused", "1" if paused else "0")
        now = store.get_setting("paused")
    finally:
        store.close()
    state = ("paused: observe only, nothing mutating runs" if now == "1"
             else "resumed: acting")
    click.echo(f"{_shown(db_path, resolve=True)}: {state}")


def _shown(db_path: str, *, resolve: bool = False) -> str:
    """The store as a person reads it: the file (resolved), or the URL without password."""
    from remediator.store import display, is_postgres

    if is_postgres(db_path) or not resolve:
        return display(db_path)
    return str(sqlite_file(db_path).resolve())


@main.command()
@db_option()
def pause(db_path: str) -> None:
    """Kill switch: keep receiving and diagnosing, mutate nothing (survives restarts)."""
    _switch(db_path, True)


@main.command()
@db_option()
def resume(db_path: str) -> None:
    """Turn the kill switch off."""
    _switch(db_path, False)


@main.group()
def db() -> None:
    """Move a store between backends."""


@db.command("copy")
@click.option("--from", "source", required=True, callback=no_password,
              help="The store to copy: a SQLite file or URL, or postgresql://...")
@click.option("--to", "destination", required=True, callback=no_password,
              help="An empty store to copy into, e.g. postgresql://user@host:port/dbname "
                   "(password from PGPASSWORD or PGPASSFILE).")
def db_copy(source: str, destination: str) -> None:
    """Copy every row of one store into a new, empty one (ids kept): e.g. the SQLite file
    of `make up` into the PostgreSQL database replicas share. Stop `remediator serve`
    first (a SQLite store it holds is refused); the source's rows are not changed (a store
    from an older release is migrated first, as serve would)."""
    from remediator.adapters.store_lock import lock_store
    from remediator.store import display, is_postgres
    from remediator.store.copy import copy_store

    try:  # the lock `remediator serve` holds on a SQLite store: refused while it runs
        sqlite = None if is_postgres(source) else sqlite_file(source)
        lock = lock_store(sqlite) if sqlite is not None and sqlite.is_file() else None
    except RemediatorError as exc:
        fail(f"cannot copy {display(source)}: {exc}; stop `remediator serve` first, so the "
             "copy has every row it committed")
    src = open_store(source)
    try:
        from remediator.store import open_store as open_target

        try:
            dst = open_target(destination)
        except RemediatorError as exc:
            fail(f"{exc}")
        try:
            counts = copy_store(src, dst)
        finally:
            dst.close()
    finally:
        src.close()
        if lock is not None:
            lock.release()
    rows = ", ".join(f"{table} {n}" for table, n in counts.items() if n) or "no rows"
    click.echo(f"copied {display(source)} to {display(destination)}: {rows}")


def _add_commands() -> None:
    from remediator.service.cli_engine import run, validate

    main.add_command(validate)
    main.add_command(run)
    try:
        from remediator.service.cli_notify import claim, notify_test
    except ImportError:  # escalation lands in its own module; until then no notify-test
        return
    main.add_command(notify_test)
    main.add_command(claim)


_add_commands()
