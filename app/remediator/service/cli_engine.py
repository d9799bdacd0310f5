"""`remediator validate` and `remediator run`: the playbook engine from the command line.

Both are plain click commands; remediator/cli.py adds them to the `remediator` group.
`run` needs a Runtime: tests hand one in as `obj={"runtime": fake}` (or a
`"runtime_factory"`); otherwise the Docker/HTTP adapters are imported lazily, so `validate`
works on a machine without Docker.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NoReturn

import click

from remediator.core import defaults
from remediator.core.alerts import Alert, parse_alert, parse_webhook
from remediator.core.config import Mode, RemediatorConfig, load_config
from remediator.core.playbook import load_playbook
from remediator.core.results import ExecutionResult, Outcome, StepResult, StepStatus
from remediator.core.runner import Runtime, run_playbook
from remediator.core.targets import match_target
from remediator.core.validate import validate_paths
from remediator.errors import PayloadError, RemediatorError
from remediator.store import MAX_ROW_ID, url_password

__all__ = ["ROW_ID", "db_option", "run", "validate"]

_EXIT_PROBLEMS = 1
_EXIT_USAGE = 2

ROW_ID = click.IntRange(1, MAX_ROW_ID)
"""An id (or count) of rows in the store, within SQLite's 64-bit INTEGER: a larger
number is refused by click, naming the argument, before SQLite would overflow."""

def db_option(default: str | None = defaults.DEFAULT_DB_PATH,
              fallback: str | None = None) -> Any:
    """The ``--db`` option every store command takes: a SQLite path or URL, or a
    PostgreSQL URL; ``$REMEDIATOR_DB`` when absent, then `default` (or what `fallback`
    says). A password on the command line is refused: see :func:`no_password`."""
    return click.option(
        "--db", "db_path", envvar=defaults.DB_ENV, default=default, callback=no_password,
        help="The store: a SQLite file, sqlite:///path, or postgresql://user@host:port/db "
             "(its password from PGPASSWORD or PGPASSFILE, never here). Default: "
             f"${defaults.DB_ENV}, else {fallback or default}.")


def no_password(ctx: click.Context, param: click.Parameter, value: str | None
                ) -> str | None:
    """Refuse a store URL with a password given on the command line (every user of the
    host can read a process's arguments); the environment may carry it."""
    source = ctx.get_parameter_source(param.name or "")
    if value and source is click.core.ParameterSource.COMMANDLINE and url_password(value):
        raise click.BadParameter(
            "the URL carries a password, which would show in the process list and the "
            "shell history: leave it out (postgresql://user@host:port/dbname) and give it "
            "to libpq in PGPASSWORD or in a password file (~/.pgpass, or the one PGPASSFILE "
            f"names); ${defaults.DB_ENV} may also hold the whole URL")
    return value


@click.command("validate")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--config", "config_path", type=click.Path(path_type=Path), default=None,
              help="Config whose targets playbooks may name "
                   f"[default: {defaults.DEFAULT_CONFIG_PATH} when it exists].")
@click.option("--escalation", "escalation_path", type=click.Path(path_type=Path), default=None,
              help="Escalation policy whose teams playbooks may name "
                   f"[default: {defaults.DEFAULT_ESCALATION_PATH} when it exists].")
def validate(paths: tuple[Path, ...], config_path: Path | None,
             escalation_path: Path | None) -> None:
    """Check playbooks and config: every problem as file:line: field: message.

    PATHS are files or directories (default: playbooks/ and config/remediator.yml). The
    config and escalation policy are always checked too, since target and team names in
    playbooks mean what they declare. Exits 1 if there is any problem.
    """
    checked = list(paths) or [Path(defaults.DEFAULT_PLAYBOOKS_DIR)]
    for given, default in ((config_path, defaults.DEFAULT_CONFIG_PATH),
                           (escalation_path, defaults.DEFAULT_ESCALATION_PATH)):
        path = given or Path(default)
        if (given is not None or path.exists()) and path not in checked:
            checked.append(path)
    problems = validate_paths(checked, configs=[config_path] if config_path else ())
    for problem in problems:
        click.echo(str(problem))
    if problems:
        click.echo(f"{len(problems)} problem(s)", err=True)
        raise SystemExit(_EXIT_PROBLEMS)
    click.echo(f"ok: {', '.join(str(p) for p in checked)}")


@click.command("run")
@click.argument("playbook_path", metavar="PLAYBOOK",
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--alert", "alert_path", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="An Alertmanager webhook body (JSON), or one alert object from it.")
@click.option("--alert-index", default=0, show_default=True,
              help="Which alert of the webhook's `alerts` list to use.")
@click.option("--dry-run", is_flag=True,
              help="Diagnose and show what would change; mutate nothing.")
@click.option("--config", "config_path", type=click.Path(path_type=Path),
              default=Path(defaults.DEFAULT_CONFIG_PATH), show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the execution result as JSON.")
@click.pass_context
def run(
    ctx: click.Context, playbook_path: Path, alert_path: Path, alert_index: int, dry_run: bool,
    config_path: Path, as_json: bool,
) -> None:
    """Run PLAYBOOK once for an alert, printing each step as it runs.

    Exits 0 on success or a dry run, 1 on any other outcome, 2 on bad input.
    """
    try:
        config = load_config(config_path)
        playbook = load_playbook(playbook_path, config.targets)
        alert = read_alert(alert_path, alert_index)
    except RemediatorError as exc:
        _fail(str(exc))
    target = match_target(config.targets, alert.labels)
    if target is None:
        _fail(f"no target in {config_path} matches the alert's labels {alert.labels}; "
              "nothing done")
    if not playbook.matches(alert.labels):
        click.echo(f"warning: the alert does not carry the playbook's match {playbook.match}",
                   err=True)
    if config.mode is Mode.OBSERVE and not dry_run:
        click.echo("mode is observe: running as a dry run", err=True)
        dry_run = True
    target = target.for_alert(alert.labels)  # a Swarm service: the alerting replica
    result = run_playbook(playbook, alert, target, _runtime(ctx, config), dry_run=dry_run,
                          on_step=None if as_json else _print_step)
    _print_result(result, as_json)
    raise SystemExit(0 if result.outcome in (Outcome.SUCCESS, Outcome.DRY_RUN) else 1)


def read_alert(path: Path, index: int = 0) -> Alert:
    """The alert in a file: a whole webhook body (alerts[index]) or one alert object."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise PayloadError(f"{path}: cannot read JSON: {exc}") from None
    if isinstance(data, dict) and "alerts" in data:
        alerts = parse_webhook(data).alerts
        if not 0 <= index < len(alerts):
            raise PayloadError(f"{path}: has {len(alerts)} alert(s), no index {index}")
        return alerts[index]
    return parse_alert(data)


def _runtime(ctx: click.Context, config: RemediatorConfig) -> Runtime:
    obj: dict[str, Any] = ctx.obj if isinstance(ctx.obj, dict) else {}
    if obj.get("runtime") is not None:
        runtime: Runtime = obj["runtime"]
        return runtime
    factory = obj.get("runtime_factory")
    if factory is None:
        from remediator.adapters.runtime import build_runtime  # Docker only when needed

        factory = build_runtime
    built: Runtime = factory(config)
    return built


def _print_step(step: StepResult) -> None:
    if step.status is StepStatus.RUNNING:
        click.echo(f"-> [{step.phase}] {step.id} ({step.action})")
        return
    detail = step.error or step.note or _key_outputs(step.outputs)
    click.echo(f"   {step.status.value:<15} {step.duration_s:7.2f}s  {step.id}: {detail}")


def _key_outputs(outputs: dict[str, Any], limit: int = 4) -> str:
    """The first few non-empty outputs, `output` last and cut to one short line."""
    shown = [f"{key}={_short(value)}" for key, value in outputs.items()
             if key != "output" and value not in (None, "", [], {})][:limit]
    text = str(outputs.get("output") or "").strip().splitlines()
    if text:
        shown.append(_short(text[0] + (" ..." if len(text) > 1 else "")))
    return ", ".join(shown)


def _short(value: Any, width: int = 80) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= width else text[: width - 3] + "..."


def _print_result(result: ExecutionResult, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
        return
    reason = f" ({result.reason})" if result.reason else ""
    click.echo(f"outcome: {result.outcome.value}{reason}")
    if result.scenario:
        click.echo(f"scenario: {result.scenario}")
    for label, requests in (("escalation", result.escalations),
                            ("would escalate", result.would_escalate)):
        for request in requests:
            click.echo(f"{label}: {request.team} [{request.level}] {request.reason}")


def _fail(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    raise SystemExit(_EXIT_USAGE)
