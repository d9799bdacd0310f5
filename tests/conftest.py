"""Shared fixtures: a real Docker engine, the project's images, and their clean-up.

Tests marked ``docker`` skip with a reason on a laptop without Docker; under CI=true they
fail instead, because a skipped integration suite is a failed one.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from tests.harness import docker_engine
from tests.harness.docker_engine import Engine, Resources

LEFTOVERS: list[str] = []

# A second dockerd (TLS) and a one-node Swarm on it, for targets past one engine; the
# session's PostgreSQL cluster (pg_cluster, pg_url).
pytest_plugins = ("tests.harness.engine_fixtures", "tests.harness.postgres")


@pytest.fixture(scope="session")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    eng = docker_engine.start_engine(tmp_path_factory.mktemp("dockerd"))
    try:
        yield eng
    finally:
        LEFTOVERS.extend(docker_engine.stop_engine(eng))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Nothing the harness created may outlive the session: say so, and fail the run."""
    if LEFTOVERS:
        print(f"\nleft behind by this test session: {', '.join(LEFTOVERS)}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="session")
def docker_client(engine: Engine) -> docker.DockerClient:
    return engine.client


@pytest.fixture(scope="session")
def images(docker_client: docker.DockerClient) -> dict[str, str]:
    """Build (or reuse from the layer cache) both images once per session."""
    docker_engine.build_images()
    return {"modelserver": docker_engine.MODELSERVER_IMAGE,
            "remediator": docker_engine.REMEDIATOR_IMAGE}


@pytest.fixture
def docker_resources(docker_client: docker.DockerClient) -> Iterator[Resources]:
    yield from docker_engine.resources(docker_client)


@pytest.fixture
def repo_root() -> Path:
    return docker_engine.ROOT
