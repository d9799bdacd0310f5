"""A PostgreSQL store that loses its database: every operation fails with StoreError within
seconds (never hangs), ping() says False, and when the database is back the same store
object works again, without a restart (issue 19). The session's real cluster is stopped
and started (tests/harness/postgres.py)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from remediator.core import defaults
from remediator.errors import StoreError
from remediator.store import Store, open_store
from tests.harness.postgres import Cluster

BOUND_S = defaults.PG_POOL_TIMEOUT_S + defaults.PG_CONNECT_TIMEOUT_S + 3
"""The longest an operation may take to fail while the database is gone."""


@pytest.fixture
def store(pg_url: str, pg_cluster: Cluster) -> Iterator[Store]:
    opened = open_store(pg_url)
    yield opened
    if not pg_cluster.running:
        pg_cluster.start()
    opened.close()


def timed(operation: Callable[[], Any]) -> float:
    started = time.monotonic()
    with pytest.raises(StoreError) as raised:
        operation()
    assert "postgresql://postgres@127.0.0.1" in str(raised.value)  # says which store
    return time.monotonic() - started


def test_a_lost_database_is_a_store_error_within_seconds_and_the_pool_recovers(
        store: Store, pg_cluster: Cluster) -> None:
    (before,) = store.record_inbox([b"acked before"])
    pg_cluster.stop()
    try:
        assert not store.ping()
        for operation in (lambda: store.record_inbox([b"while down"]), store.inbox_depth,
                          lambda: store.incident(1), lambda: store.set_setting("k", "v")):
            assert timed(operation) < BOUND_S
    finally:
        pg_cluster.start()
    deadline = time.monotonic() + 30
    while not store.ping():  # the pool reconnects by itself
        assert time.monotonic() < deadline, "the store did not come back within 30 s"
        time.sleep(0.2)
    (after,) = store.record_inbox([b"acked after"])
    assert [(i.id, i.body) for i in store.unprocessed_inbox()] == [
        (before, b"acked before"), (after, b"acked after")]


def test_a_store_cannot_open_while_the_database_is_gone(pg_url: str,
                                                        pg_cluster: Cluster) -> None:
    pg_cluster.stop()
    try:
        started = time.monotonic()
        with pytest.raises(StoreError, match="cannot open the store at postgresql://"):
            open_store(pg_url)
        assert time.monotonic() - started < BOUND_S
    finally:
        pg_cluster.start()
