"""Session fixtures for targets past one engine: a second dockerd (unix socket and TLS),
its copy of the app image, and a one-node Swarm on it. Registered by tests/conftest.py."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.harness.docker_engine import unavailable
from tests.harness.second_engine import SecondEngine, start_second_engine, stop_second_engine
from tests.harness.swarm import init_swarm, leave_swarm


@pytest.fixture(scope="session")
def second_engine(images: dict[str, str],
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecondEngine]:
    """A private dockerd, as a second host, with mobile-multimodal:latest loaded into it."""
    if os.geteuid() != 0:
        unavailable("a second dockerd needs root")
    try:
        engine = start_second_engine(tmp_path_factory.mktemp("second-engine"))
    except (RuntimeError, OSError) as exc:
        unavailable(f"the second dockerd did not start: {exc}")
        raise
    try:
        engine.load_image(images["modelserver"])
        yield engine
    finally:
        from tests.conftest import LEFTOVERS

        LEFTOVERS.extend(stop_second_engine(engine))


@pytest.fixture(scope="session")
def swarm(second_engine: SecondEngine) -> Iterator[SecondEngine]:
    """The second engine as a one-node Swarm manager (left at the end)."""
    init_swarm(second_engine)
    try:
        yield second_engine
    finally:
        leave_swarm(second_engine)
