"""A private PostgreSQL 15 cluster per test session, and a fresh database per test.

Debian's ``postgresql-15`` (``make host`` installs it): ``initdb`` into a temp folder owned
by the ``postgres`` user (initdb and postgres refuse to run as root, so as root they run
through ``runuser``), listening on 127.0.0.1 on a free port, fsync off. Password
authentication (scram) as production would have it: the password is in a libpq password
file named by ``PGPASSFILE``, never in a URL. Stopped and removed at the end of the session.

    def test_x(pg_url: str) -> None:             # a new, empty database, migrated
        store = open_store(pg_url)

    def test_y(pg_cluster: Cluster) -> None:
        url = pg_cluster.create_database()       # another one (e.g. for subprocesses)
        env = {**os.environ, **pg_cluster.env()} # what a replica process needs
        pg_cluster.stop(); ...; pg_cluster.start()  # an outage

Outside pytest (a bench script): ``cluster = start_cluster()`` ... ``remove_cluster(cluster)``.
Without PostgreSQL the fixtures skip with the reason; under CI=true they fail instead.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import secrets
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.harness.docker_engine import in_ci
from tests.harness.processes import free_port

__all__ = ["Cluster", "ClusterError", "pg_cluster", "pg_url", "remove_cluster", "start_cluster"]

PG_BIN = Path(os.environ.get("REMEDIATOR_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
OWNER = "postgres"
TEMPLATE = "remediator_template"
"""A database migrated once per session; each test's database is a copy of it."""


class ClusterError(Exception):
    """The test cluster could not be made or started; the message says why."""


@dataclass
class Cluster:
    root: Path
    port: int
    password: str
    passfile: Path
    _names: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "postgres.log"

    def url(self, dbname: str = "postgres") -> str:
        """A URL without the password (libpq reads it from PGPASSFILE)."""
        return f"postgresql://{OWNER}@127.0.0.1:{self.port}/{dbname}"

    def env(self) -> dict[str, str]:
        """What a process needs to reach the cluster with :meth:`url`."""
        return {"PGPASSFILE": str(self.passfile)}

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        """Start the server (again, after stop()); returns once it accepts connections."""
        options = (f"-p {self.port} -c listen_addresses=127.0.0.1 "
                   f"-c unix_socket_directories={self.root} -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=300")
        _as_owner([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w",
                   "-t", "60", "-o", options, "start"], f"start PostgreSQL ({self.log})")

    def stop(self) -> None:
        """Stop the server now (fast: open sessions are cut off, as when a host dies)."""
        _as_owner([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-w", "-t", "60", "-m",
                   "fast", "stop"], "stop PostgreSQL")

    @property
    def running(self) -> bool:
        return subprocess.run(_owner_cmd([str(PG_BIN / "pg_ctl"), "-D", str(self.data),
                                          "status"]), capture_output=True).returncode == 0

    # -- databases --------------------------------------------------------------------------
    def admin(self, sql: str) -> None:
        """Run one statement as the superuser in the `postgres` database (autocommit)."""
        import psycopg

        with psycopg.connect(self.url(), autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql.encode())

    def create_database(self, *, migrated: bool = True) -> str:
        """A new database's URL: a copy of the session's migrated template, or empty."""
        with self._lock:
            name = f"t{next(self._names)}_{secrets.token_hex(3)}"
            self.admin(f'CREATE DATABASE "{name}" TEMPLATE '
                       f'{TEMPLATE if migrated else "template0"}')
        return self.url(name)

    def drop_database(self, url: str) -> None:
        name = url.rsplit("/", 1)[1]
        self.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _owner_cmd(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", OWNER, "--", *cmd] if os.geteuid() == 0 else cmd


def _as_owner(cmd: list[str], what: str) -> None:
    proc = subprocess.run(_owner_cmd(cmd), capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise ClusterError(f"cannot {what}: exit {proc.returncode}\n"
                           f"{(proc.stdout + proc.stderr)[-2000:]}")


def start_cluster() -> Cluster:
    """initdb a new cluster in a temp folder and start it, with the migrated template."""
    if not (PG_BIN / "initdb").exists():
        raise ClusterError(f"no PostgreSQL 15 at {PG_BIN} (install Debian's postgresql "
                           "package: `make host`)")
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        raise ClusterError("runuser is missing: initdb and postgres refuse to run as root")
    root = Path(tempfile.mkdtemp(prefix="remediator-pg-"))
    password = secrets.token_urlsafe(18)
    (root / "pwfile").write_text(password + "\n")
    if os.geteuid() == 0:
        shutil.chown(root, OWNER, OWNER)
        shutil.chown(root / "pwfile", OWNER, OWNER)
    port = free_port()
    passfile = Path(tempfile.mkdtemp(prefix="remediator-pgpass-")) / "pgpass"
    passfile.write_text(f"127.0.0.1:{port}:*:{OWNER}:{password}\n")
    passfile.chmod(0o600)  # libpq ignores a password file others can read
    cluster = Cluster(root, port, password, passfile)
    _as_owner([str(PG_BIN / "initdb"), "-D", str(cluster.data), "-U", OWNER,
               "--auth-local=trust", "--auth-host=scram-sha-256",
               f"--pwfile={root / 'pwfile'}", "-E", "UTF8", "--locale=C", "--no-sync"],
              "initdb")
    os.environ.update(cluster.env())  # this process's stores find the password there
    cluster.start()
    cluster.admin(f"CREATE DATABASE {TEMPLATE}")
    from remediator.store import open_store

    open_store(cluster.url(TEMPLATE)).close()  # migrated once; copies start migrated
    return cluster


def remove_cluster(cluster: Cluster) -> None:
    with contextlib.suppress(ClusterError):
        if cluster.running:
            cluster.stop()
    shutil.rmtree(cluster.root, ignore_errors=True)
    shutil.rmtree(cluster.passfile.parent, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    """The session's PostgreSQL cluster (skips without PostgreSQL; fails under CI=true)."""
    try:
        cluster = start_cluster()
    except (ClusterError, ImportError, OSError) as exc:
        if in_ci():
            pytest.fail(f"PostgreSQL is required under CI=true: {exc}", pytrace=False)
        pytest.skip(f"no PostgreSQL for this test: {exc}")
    try:
        yield cluster
    finally:
        remove_cluster(cluster)


@pytest.fixture
def pg_url(pg_cluster: Cluster) -> Iterator[str]:
    """A new database of the session's cluster, migrated; dropped after the test."""
    if not pg_cluster.running:  # a test that stopped it failed before starting it again
        pg_cluster.start()
    url = pg_cluster.create_database()
    yield url
    with contextlib.suppress(Exception):
        pg_cluster.drop_database(url)
