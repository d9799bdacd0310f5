"""Escalation commands: ``notify-test TEAM`` and ``claim INCIDENT``.

``remediator notify-test TEAM`` sends a test message through every channel of a team.
It talks to the channels directly (no store, no worker), so it works before anything else
is running: the quickest way to check that SLACK_WEBHOOK_URL and friends are right.
Exit status: 0 when no configured channel failed, 1 when one did (or the policy is
invalid), 2 when the team is unknown.

``remediator claim INCIDENT --db PATH [--by NAME]``: a human takes over. Works on the
store directly, so it works whether or not ``remediator serve`` is running; a running
server sees the claim within a second (its running execution skips the remaining fix
steps, its escalation timer stops). Exit status: 0 claimed, 1 someone else holds it,
2 no such incident or store.
"""

from __future__ import annotations

import getpass
import os
import uuid
from pathlib import Path

import click

from remediator.adapters.notifiers import build_channels, dispatch, render_message
from remediator.core.clock import utc_now
from remediator.core.defaults import DEFAULT_ESCALATION_PATH
from remediator.core.escalation_eval import dedup_key
from remediator.core.escalation_load import load_escalation_policy
from remediator.errors import ConfigError, StoreError, TemplateError
from remediator.service.cli_engine import ROW_ID, db_option

__all__ = ["claim", "notify_test"]

_EXIT_FAILED = 1
_EXIT_UNKNOWN_TEAM = 2
_EXIT_NOT_FOUND = 2


@click.command("notify-test")
@click.argument("team")
@click.option("--config", "config_path", default=DEFAULT_ESCALATION_PATH, show_default=True,
              type=click.Path(dir_okay=False, path_type=Path),
              help="Escalation policy that defines the team and its channels.")
@click.option("--template-dir", type=click.Path(file_okay=False, path_type=Path),
              default=None, help="Directory of templates overriding the shipped ones.")
@click.pass_context
def notify_test(ctx: click.Context, team: str, config_path: Path,
                template_dir: Path | None) -> None:
    """Send a test notification through every configured channel of TEAM."""
    try:
        policy = load_escalation_policy(config_path)
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        ctx.exit(_EXIT_FAILED)
    if team not in policy.teams:
        click.echo(f"error: unknown team {team!r} in {config_path} "
                   f"(teams: {', '.join(policy.teams)})", err=True)
        ctx.exit(_EXIT_UNKNOWN_TEAM)
    run_id = uuid.uuid4().hex[:12]
    try:
        message = render_message(template_dir, "test", {
            "team": team, "level": "notify", "severity": "info",
            "incident": {"id": f"test-{run_id}"},
            "dedup_key": dedup_key(f"test-{run_id}", team, "notify"),
        })
    except TemplateError as exc:
        click.echo(f"error: {exc}", err=True)
        ctx.exit(_EXIT_FAILED)
    results = dispatch(build_channels(policy.teams[team], os.environ), message)
    for result in results:
        click.echo(result.line())
    if all(result.outcome.status == "not_configured" for result in results):
        click.echo(f"warning: no channel of {team} is configured", err=True)
    ctx.exit(0 if all(result.ok for result in results) else _EXIT_FAILED)


@click.command("claim")
@click.argument("incident_id", type=ROW_ID)
@db_option()
@click.option("--by", default=None, help="Who takes over (default: your user name).")
@click.pass_context
def claim(ctx: click.Context, incident_id: int, db_path: str, by: str | None) -> None:
    """A human takes over INCIDENT: Remediator stops acting on it and stops escalating."""
    from remediator.escalation import ClaimRefused, claim_incident
    from remediator.store import display, is_postgres, open_store, sqlite_path

    if not is_postgres(db_path) and not Path(sqlite_path(db_path)).is_file():
        click.echo(f"error: no store at {sqlite_path(db_path)} (pass --db, the file "
                   "`remediator serve` uses)", err=True)
        ctx.exit(_EXIT_NOT_FOUND)
    try:
        store = open_store(db_path)
    except StoreError as exc:
        what = "database" if is_postgres(db_path) else "file"
        click.echo(f"error: {exc} (is {display(db_path)} the {what} `remediator serve` "
                   "uses?)", err=True)
        ctx.exit(_EXIT_NOT_FOUND)
    try:
        result = claim_incident(store, incident_id, by or getpass.getuser(), utc_now())
    except ClaimRefused as exc:
        click.echo(f"error: {exc}", err=True)
        ctx.exit(_EXIT_NOT_FOUND if exc.why == "unknown" else _EXIT_FAILED)
    finally:
        store.close()
    cancelled = ", ".join(map(str, result.cancelled)) or "none"
    verb = "was already claimed" if result.already else "claimed"
    click.echo(f"incident {incident_id} {verb} by {result.claimed_by} at {result.claimed_at}; "
               f"cancelled pending executions: {cancelled}")
