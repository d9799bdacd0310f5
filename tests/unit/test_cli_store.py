"""The store commands and `serve` fail with one clear line (what, where), never a traceback,
and the kill switch never does nothing silently."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import responses
from click.testing import CliRunner, Result

from remediator.service.cli import main
from remediator.store.sqlite import SqliteStore as Store

HUGE_ID = "99999999999999999999"  # past SQLite's 64-bit INTEGER


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, list(args), env=env)


def assert_clean_failure(result: Result, *fragments: str) -> None:
    """Exit 2 with a message on stderr, and no Python traceback anywhere."""
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in result.stderr


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "remediator.db"
    Store(path).close()
    return path


@pytest.fixture
def not_a_store(tmp_path: Path) -> Path:
    path = tmp_path / "bad.db"
    path.write_text("this is not SQLite\n" * 100)
    return path


# 1. Ids past SQLite's range are refused by the command line, naming the argument

@pytest.mark.parametrize(("args", "name"), [
    (["executions", "show", HUGE_ID], "'EXECUTION_ID'"),
    (["report", HUGE_ID], "'INCIDENT_ID'"),
    (["claim", HUGE_ID], "'INCIDENT_ID'"),
    (["executions", "list", "--limit", HUGE_ID], "'--limit'"),
])
def test_an_id_past_sqlites_range_is_a_usage_error_naming_the_argument(
        db: Path, args: list[str], name: str) -> None:
    result = invoke(*args, "--db", str(db))
    assert_clean_failure(result, f"Invalid value for {name}", HUGE_ID, "not in the range")


# 2. The kill switch

@pytest.mark.parametrize("command", ["pause", "resume"])
def test_kill_switch_without_a_store_fails_saying_where_it_looked(
        tmp_path: Path, command: str) -> None:
    missing = tmp_path / "nowhere.db"
    result = invoke(command, "--db", str(missing))
    assert_clean_failure(result, f"no store at {missing}", "--db")
    assert not missing.exists()


def test_pause_and_resume_say_which_store_and_its_new_state(db: Path) -> None:
    paused = invoke("pause", "--db", str(db))
    assert paused.exit_code == 0
    assert paused.stdout == f"{db.resolve()}: paused: observe only, nothing mutating runs\n"
    store = Store(db)
    assert store.get_setting("paused") == "1"
    resumed = invoke("resume", "--db", str(db))
    assert (resumed.exit_code, resumed.stdout) == (0, f"{db.resolve()}: resumed: acting\n")
    assert store.get_setting("paused") == "0"
    store.close()


# 8. A --db that is not a store

@pytest.mark.parametrize("args", [["executions", "list"], ["executions", "show", "1"],
                                  ["report", "1"], ["pause"]])
def test_a_file_that_is_not_sqlite_is_a_clear_error(not_a_store: Path,
                                                    args: list[str]) -> None:
    result = invoke(*args, "--db", str(not_a_store))
    assert_clean_failure(result, f"cannot open the store at {not_a_store}",
                         "file `remediator serve` uses")


def test_claim_on_a_file_that_is_not_sqlite_is_a_clear_error(not_a_store: Path) -> None:
    result = invoke("claim", "1", "--db", str(not_a_store), "--by", "alice")
    assert_clean_failure(result, f"cannot open the store at {not_a_store}")


def test_a_directory_as_the_store_is_a_clear_error(tmp_path: Path) -> None:
    result = invoke("executions", "list", "--db", str(tmp_path))
    assert_clean_failure(result, f"{tmp_path} is a directory, not a store")


# 8. serve checks its setup before gunicorn starts

@pytest.fixture
def no_gunicorn(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: Any, **__: Any) -> None:
        raise AssertionError("gunicorn started with a setup that cannot load")

    monkeypatch.setattr("remediator.service.server.run_gunicorn", refuse)


def serve(tmp_path: Path, *args: str) -> Result:
    config = tmp_path / "remediator.yml"
    config.write_text("targets: []\n")
    return invoke("serve", "--config", str(config), *args,
                  env={"REMEDIATOR_WEBHOOK_TOKEN": "t0k"})


@pytest.mark.usefixtures("no_gunicorn")
def test_serve_with_a_missing_playbook_directory_says_so_before_starting(
        tmp_path: Path) -> None:
    result = serve(tmp_path, "--db", str(tmp_path / "r.db"), "--playbooks",
                   str(tmp_path / "nope"))
    assert_clean_failure(result, "cannot start:", f"{tmp_path / 'nope'}: playbook directory "
                                                  "not found")


@pytest.mark.usefixtures("no_gunicorn")
def test_serve_with_a_store_that_is_not_sqlite_says_so_before_starting(
        tmp_path: Path, not_a_store: Path) -> None:
    (tmp_path / "pb").mkdir()
    result = serve(tmp_path, "--db", str(not_a_store), "--playbooks", str(tmp_path / "pb"))
    assert_clean_failure(result, "cannot start:", f"cannot open the store at {not_a_store}")



@pytest.mark.usefixtures("no_gunicorn")
def test_serve_with_a_broken_escalation_policy_names_each_problem_and_its_line(
        tmp_path: Path) -> None:
    policy = tmp_path / "escalation.yml"
    policy.write_text("teams:\n  emergency:\n    channels: [sms]\nrules:\n"
                      "  - {name: down, team: emergency, level: critical, when: []}\n")
    config = tmp_path / "remediator.yml"
    config.write_text(f"targets: []\nescalation_path: {policy}\n")
    (tmp_path / "pb").mkdir()
    result = invoke("serve", "--config", str(config), "--db", str(tmp_path / "r.db"),
                    "--playbooks", str(tmp_path / "pb"), env={"REMEDIATOR_WEBHOOK_TOKEN": "t0k"})
    assert_clean_failure(
        result, "cannot start:",
        f"{policy}:3: teams.emergency.channels[0]: no channel named 'sms'",
        f"{policy}:5: rule 'down': rules[0].level: expected one of page, notify",
        f"{policy}:5: rule 'down': rules[0].when: expected a non-empty list of conditions")


# 7. replay reads the token from the variable the config names

@responses.activate
def test_replay_sends_the_token_from_the_configs_webhook_token_env(tmp_path: Path) -> None:
    config = tmp_path / "remediator.yml"
    config.write_text("targets: []\nwebhook_token_env: AM_TOKEN\n")
    replayed = responses.post("http://127.0.0.1:19198/api/v1/executions/1/replay",
                              json={"execution_id": 2, "replay_of": 1, "dry_run": True},
                              status=202)
    result = invoke("replay", "1", "--dry-run", "--url", "http://127.0.0.1:19198",
                    "--config", str(config),
                    env={"AM_TOKEN": "from-am-token", "REMEDIATOR_WEBHOOK_TOKEN": "other"})
    assert result.exit_code == 0, result.output
    assert "queued execution 2 (replay of 1, dry run)" in result.stdout
    assert replayed.calls[0].request.headers["Authorization"] == "Bearer from-am-token"


@responses.activate
def test_replay_refused_401_names_the_variable_it_read(tmp_path: Path) -> None:
    config = tmp_path / "remediator.yml"
    config.write_text("targets: []\nwebhook_token_env: AM_TOKEN\n")
    responses.post("http://127.0.0.1:19198/api/v1/executions/1/replay", status=401,
                   json={"error": "missing or wrong credentials"})
    result = invoke("replay", "1", "--url", "http://127.0.0.1:19198", "--config", str(config),
                    env={"AM_TOKEN": "wrong"})
    assert_clean_failure(result, "replay refused (401)", "$AM_TOKEN", str(config))


# 9. --db names a SQLite file or a PostgreSQL database; REMEDIATOR_DB when absent; the
#    password never on the command line (issue 19)

SECRET_URL = "postgresql://remediator:s3cret-pw@127.0.0.1:1/remediator"


@pytest.mark.parametrize("args", [
    ["executions", "list", "--db", SECRET_URL], ["executions", "show", "1", "--db", SECRET_URL],
    ["report", "1", "--db", SECRET_URL], ["pause", "--db", SECRET_URL],
    ["claim", "1", "--db", SECRET_URL],
    ["db", "copy", "--from", "r.db", "--to", SECRET_URL],
    ["db", "copy", "--from", "postgresql://u@h/d?password=s3cret-pw", "--to", "x.db"],
])
def test_a_password_on_the_command_line_is_refused_pointing_at_libpqs_environment(
        args: list[str]) -> None:
    result = invoke(*args)
    assert_clean_failure(result, "carries a password", "PGPASSWORD", "PGPASSFILE")
    assert "s3cret-pw" not in result.output


@pytest.mark.usefixtures("no_gunicorn")
def test_serve_refuses_a_password_in_db_too(tmp_path: Path) -> None:
    (tmp_path / "pb").mkdir()
    result = serve(tmp_path, "--db", SECRET_URL, "--playbooks", str(tmp_path / "pb"))
    assert_clean_failure(result, "carries a password", "PGPASSWORD")
    assert "s3cret-pw" not in result.output


def test_remediator_db_names_the_store_when_db_is_absent(db: Path) -> None:
    paused = invoke("pause", env={"REMEDIATOR_DB": str(db)})
    assert (paused.exit_code, paused.stdout) == (
        0, f"{db.resolve()}: paused: observe only, nothing mutating runs\n")
    other = db.parent / "other.db"
    Store(other).close()
    resumed = invoke("resume", "--db", f"sqlite:///{other}", env={"REMEDIATOR_DB": str(db)})
    assert (resumed.exit_code, resumed.stdout) == (0, f"{other.resolve()}: resumed: acting\n")
    store = Store(db)
    assert store.get_setting("paused") == "1"  # --db won over REMEDIATOR_DB
    store.close()


def test_the_cli_works_on_a_postgres_store(pg_url: str, pg_cluster: Any,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from remediator.store import open_store

    assert invoke("pause", "--db", pg_url).stdout == (
        f"{pg_url}: paused: observe only, nothing mutating runs\n")
    store = open_store(pg_url)
    try:
        assert store.get_setting("paused") == "1"
    finally:
        store.close()
    assert invoke("executions", "list", "--db", pg_url).exit_code == 0
    assert_clean_failure(invoke("report", "7", "--db", pg_url), f"no incident 7 in {pg_url}")
    # REMEDIATOR_DB may carry the password (the environment, not argv); shown without it.
    password = pg_cluster.password
    with_password = pg_url.replace("postgres@", f"postgres:{password}@")
    monkeypatch.setenv("PGPASSFILE", "/nonexistent")  # so only the URL's password can work
    resumed = invoke("resume", env={"REMEDIATOR_DB": with_password})
    assert resumed.exit_code == 0, resumed.output
    assert resumed.stdout == f"{pg_url}: resumed: acting\n" and password not in resumed.output


def test_a_postgres_store_that_does_not_answer_is_a_clear_error() -> None:
    result = invoke("executions", "list", "--db", "postgresql://nobody@127.0.0.1:1/none")
    assert_clean_failure(result, "cannot open the store at postgresql://nobody@127.0.0.1:1/none",
                         "database `remediator serve` uses")
