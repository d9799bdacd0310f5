"""The store backends the contract suite runs against: SQLite, and PostgreSQL on the test
session's private cluster (tests/harness/postgres.py). Every test in this folder runs
against each."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from remediator.store import Store, open_store

BACKENDS = ("sqlite", "postgres")

StoreFactory = Callable[[], Store]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def location(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """Where the test's store is: a SQLite file, or a new PostgreSQL database."""
    if backend == "sqlite":
        return str(tmp_path / "contract.db")
    if backend == "postgres":
        return str(request.getfixturevalue("pg_url"))
    raise AssertionError(f"no such backend {backend}")


@pytest.fixture
def store(location: str) -> Iterator[Store]:
    """A new, empty, migrated store of the backend."""
    opened = open_store(location)
    yield opened
    opened.close()


@pytest.fixture
def reopen(location: str) -> Iterator[StoreFactory]:
    """Open the same store again (another process, a replica, or a restart, would)."""
    opened: list[Store] = []

    def again() -> Store:
        opened.append(open_store(location))
        return opened[-1]

    yield again
    for each in opened:
        each.close()
