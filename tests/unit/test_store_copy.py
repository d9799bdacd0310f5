"""`remediator db copy` moves a store made by an older Remediator (the legacy fixture, schema
version 3, migrated on open) into PostgreSQL: every record reads back equal, ids kept, and
new rows get new ids (issue 19)."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from remediator.service.cli import main
from remediator.store import Store, open_store
from remediator.store.sql import TABLES
from tests.unit.test_store_migrations import LEGACY


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def everything(store: Store) -> dict[str, Any]:
    """What the store's API shows of it: every record, with steps and deliveries."""
    incidents = store.incidents(1000)
    return {
        "incidents": incidents,
        "executions": store.executions(1000),
        "notifications": store.notifications(1000),
        "inbox": store.inbox(1000),
        "dead_letters": store.dead_letters(1000),
        "last_known_good": [store.last_known_good_record(t) for t in
                            sorted({i.target for i in incidents if i.target})],
        "instance_id": store.instance_id, "paused": store.get_setting("paused"),
        "aliases": store.incident_ids_for_keys([i.incident_key for i in incidents]),
        "pending": store.pending_escalations(), "version": store.schema_version(),
        "counts": {t: store.count(t) for t in ("inbox", "dead_letters", "incidents",
                                               "executions", "steps", "notifications",
                                               "deliveries")},
    }


@pytest.fixture
def legacy(tmp_path: Path) -> Path:
    copy = tmp_path / "remediator.db"
    shutil.copyfile(LEGACY, copy)
    store = open_store(copy)  # migrated, as `remediator serve` of this version would
    store.record_last_known_good("app-prod", "sha256:abc", {"env": ["A=1"]})
    store.add_dead_letter(b"\x00\xffnot json", "not JSON", "text/plain")
    store.close()
    return copy


def test_a_legacy_store_copied_to_postgres_reads_back_equal(legacy: Path, pg_url: str) -> None:
    result = invoke("db", "copy", "--from", str(legacy), "--to", pg_url)
    assert result.exit_code == 0, result.output
    assert "copied" in result.stdout and "incidents 6" in result.stdout
    source, copied = open_store(legacy), open_store(pg_url)
    try:
        before = everything(source)
        assert before["counts"]["incidents"] == 6 and before["counts"]["deliveries"] == 36
        assert everything(copied) == before
        # New rows continue after the copied ids instead of colliding with them.
        (inbox_id,) = copied.record_inbox([b"{}"])
        assert inbox_id == max(i.id for i in before["inbox"]) + 1
        execution = copied.add_execution(None, "pb", "app-prod", None, dry_run=True)
        assert execution == max(e.id for e in before["executions"]) + 1
        assert copied.enqueue_notification(_draft(), datetime.now(UTC)) == 15
    finally:
        source.close()
        copied.close()


def test_a_copy_into_a_store_with_rows_is_refused_and_changes_nothing(
        legacy: Path, pg_url: str) -> None:
    target = open_store(pg_url)
    target.set_setting("paused", "1")
    target.close()
    result = invoke("db", "copy", "--from", str(legacy), "--to", pg_url)
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "is not empty (it has rows in settings)" in result.stderr
    assert "new, empty database" in result.stderr
    again = open_store(pg_url)
    try:
        assert again.count("incidents") == 0
    finally:
        again.close()


def test_a_copy_from_a_missing_store_says_where_it_looked(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.db"
    result = invoke("db", "copy", "--from", str(missing), "--to", str(tmp_path / "b.db"))
    assert result.exit_code == 2 and f"no store at {missing}" in result.stderr
    assert not missing.exists()


def test_postgres_copies_back_to_sqlite(legacy: Path, pg_url: str, tmp_path: Path) -> None:
    assert invoke("db", "copy", "--from", str(legacy), "--to", pg_url).exit_code == 0
    back = tmp_path / "back.db"
    result = invoke("db", "copy", "--from", pg_url, "--to", f"sqlite:///{back}")
    assert result.exit_code == 0, result.output
    source, copied = open_store(legacy), open_store(back)
    try:
        assert everything(copied) == everything(source)
        assert copied.record_inbox([b"{}"])[0] == max(i.id for i in source.inbox(1000)) + 1
    finally:
        source.close()
        copied.close()


def test_every_table_is_copied() -> None:
    # A table added by a later migration must be added to TABLES (and so to the copy).
    from remediator.store.migrations import MIGRATIONS

    created = {line.split("CREATE TABLE", 1)[1].split("(")[0].strip()
               for script in MIGRATIONS for line in script.splitlines()
               if "CREATE TABLE" in line}
    assert created == set(TABLES)


def _draft() -> Any:
    from remediator.store.records import NewNotification, NotificationKind

    return NewNotification(None, NotificationKind.INFO, "copy-test", "ops", "info", "info",
                           None, "after the copy", {"title": "t"}, (("slack", "slack"),))


def test_a_store_that_serve_holds_is_not_copied(legacy: Path, tmp_path: Path) -> None:
    # `remediator serve` holds its SQLite store's lock: a copy taken under it would miss
    # what serve commits after, and read each table at another moment.
    from remediator.adapters.store_lock import lock_store

    held = lock_store(legacy)
    try:
        result = invoke("db", "copy", "--from", str(legacy), "--to",
                        str(tmp_path / "copy.db"))
    finally:
        if held is not None:
            held.release()
    assert result.exit_code != 0
    assert "stop `remediator serve`" in result.output and str(legacy) in result.output
    assert not (tmp_path / "copy.db").exists()
