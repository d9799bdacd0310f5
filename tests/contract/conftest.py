"""The store backends the contract suite runs against. A new backend (PostgreSQL, issue 19)
adds its name to BACKENDS and a branch to `_open`; every test in this folder then runs
against it too."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from remediator.store import Store, open_store

BACKENDS = ("sqlite",)

StoreFactory = Callable[[], Store]


def _open(backend: str, tmp_path: Path) -> Store:
    if backend == "sqlite":
        return open_store(tmp_path / "contract.db")
    raise AssertionError(f"no such backend {backend}")


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store(backend: str, tmp_path: Path) -> Iterator[Store]:
    """A new, empty, migrated store of the backend."""
    opened = _open(backend, tmp_path)
    yield opened
    opened.close()


@pytest.fixture
def reopen(backend: str, tmp_path: Path) -> Iterator[StoreFactory]:
    """Open the same store again (another process, or a restart, would)."""
    opened: list[Store] = []

    def again() -> Store:
        opened.append(_open(backend, tmp_path))
        return opened[-1]

    yield again
    for each in opened:
        each.close()
