"""Ingest figures: `remediator serve` under wrk at 1, 10 and 50 senders, beside the ceiling.

The ceiling is a no-op endpoint served the same way (gunicorn, one process, same threads),
measured in the same run, so the ratio holds on a noisy shared machine. After the runs, the
store must hold exactly the alerts that got a 202.

With PostgreSQL 15 installed (a private cluster, tests/harness/postgres.py), the same run
adds rows for replicas on one PostgreSQL database: 1 replica, 3 replicas (senders spread
over them, one wrk each), and 2 `--role intake` processes beside one `--role worker` (wrk
posts to the intake processes only); each setup's store is checked the same way.

    python bench/bench_ingest.py [--seconds 10] [--senders 1,10,50] [--no-postgres]
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
TOKEN = "bench-token"
THREADS = 8


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_up(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            requests.get(url, timeout=1)
            return
        except requests.RequestException:
            time.sleep(0.1)
    raise SystemExit(f"bench: {url} did not come up")


def start_remediator(tmp: Path, port: int, db: str | None = None, role: str | None = None,
                     replica_id: str | None = None,
                     env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    config = tmp / "remediator.yml"
    config.write_text("targets: []\n")
    (tmp / "playbooks").mkdir(exist_ok=True)
    argv = [str(BIN / "remediator"), "serve", "--host", "127.0.0.1", "--port", str(port),
            "--db", db or str(tmp / "bench.db"), "--config", str(config), "--playbooks",
            str(tmp / "playbooks"), "--threads", str(THREADS)]
    argv += ["--role", role] if role else []
    argv += ["--replica-id", replica_id] if replica_id else []
    full_env = {**os.environ, **(env or {}), "REMEDIATOR_WEBHOOK_TOKEN": TOKEN,
                "LOG_LEVEL": "WARNING"}
    return subprocess.Popen(argv, env=full_env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


def start_noop(port: int) -> subprocess.Popen[bytes]:
    # This tree's remediator (app/) first, whatever the venv has installed.
    path = os.pathsep.join([str(ROOT / "app"), str(ROOT), os.environ.get("PYTHONPATH", "")])
    return subprocess.Popen([sys.executable, str(ROOT / "bench" / "noop_server.py"), str(port),
                             str(THREADS)], env={**os.environ, "PYTHONPATH": path},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def wrk(url: str, senders: int, seconds: int, sender: int = 0) -> dict[str, float]:
    """One wrk run of ``senders`` connections; ``sender`` keeps its alerts distinct from a
    concurrent run's."""
    out = subprocess.run(
        ["wrk", "-t", str(min(senders, 2)), "-c", str(senders), "-d", f"{seconds}s",
         "--latency", "-s", str(ROOT / "bench" / "ingest.lua"),
         "-H", f"Authorization: Bearer {TOKEN}", url, "--", str(sender)],
        capture_output=True, text=True, check=True).stdout
    match = re.search(r"RESULT requests=(\d+) errors=(\d+) p50_us=(\d+) p99_us=(\d+) "
                      r"rps=([\d.]+)", out)
    status = re.search(r"STATUS_ERRORS (\d+)", out)
    if not match or not status:
        raise SystemExit(f"bench: unexpected wrk output:\n{out}")
    requests_, errors, p50, p99, rps = match.groups()
    return {"requests": int(requests_), "errors": int(errors), "p50_ms": int(p50) / 1000,
            "p99_ms": int(p99) / 1000, "rps": float(rps),
            "acked": int(requests_) - int(status.group(1))}


def spread(urls: list[str], senders: int, seconds: int) -> dict[str, float]:
    """``senders`` connections spread over ``urls`` (one wrk each, at the same time):
    alerts/s and acks summed, p50 and p99 the worst of the processes'."""
    shares = [senders // len(urls) + (n < senders % len(urls)) for n in range(len(urls))]
    results: list[dict[str, float]] = []
    threads = [threading.Thread(target=lambda u=url, c=count, n=n: results.append(
                   wrk(u, c, seconds, sender=n)))
               for n, (url, count) in enumerate(zip(urls, shares, strict=True)) if count]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if len(results) != len(threads):
        raise SystemExit("bench: a wrk run failed")
    return {"rps": sum(r["rps"] for r in results), "acked": sum(r["acked"] for r in results),
            "p50_ms": max(r["p50_ms"] for r in results),
            "p99_ms": max(r["p99_ms"] for r in results)}


@dataclass
class Setup:
    """Processes under test: where wrk posts, and how to count the store's inbox."""

    label: str
    urls: list[str]
    stored: Callable[[], int]


SetupFactory = Callable[[Path], contextlib.AbstractContextManager[Setup]]
"""Starts a setup's processes on a new store in a new folder; stops them after its block."""


def wait_ready(url: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(requests.RequestException):
            if requests.get(url, timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise SystemExit(f"bench: {url} not ready")


@contextlib.contextmanager
def processes(procs: list[subprocess.Popen[bytes]]) -> Iterator[None]:
    try:
        yield
    finally:
        for proc in procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


@contextlib.contextmanager
def sqlite_setup(folder: Path) -> Iterator[Setup]:
    port = free_port()
    folder.mkdir()
    with processes([start_remediator(folder, port)]):
        wait_up(f"http://127.0.0.1:{port}/healthz")
        yield Setup("sqlite, 1 process", [f"http://127.0.0.1:{port}/api/v1/alerts"],
                    lambda: count_sqlite(folder / "bench.db"))


def count_sqlite(db: Path) -> int:
    with contextlib.closing(sqlite3.connect(db, timeout=30)) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM inbox").fetchone()[0])


@contextlib.contextmanager
def postgres_setup(folder: Path, cluster: Any, label: str, roles: list[str],
                   posted: list[str]) -> Iterator[Setup]:
    """Replicas with ``roles`` on a fresh database of ``cluster`` (tests/harness/postgres.py);
    wrk posts to those whose role is in ``posted``."""
    url = cluster.create_database()
    ports = [free_port() for _ in roles]
    folder.mkdir()
    procs = [start_remediator(folder, port, db=url, role=role, replica_id=f"r{n + 1}",
                              env=cluster.env())
             for n, (port, role) in enumerate(zip(ports, roles, strict=True))]
    with processes(procs):
        for port in ports:
            wait_ready(f"http://127.0.0.1:{port}/readyz")
        yield Setup(label, [f"http://127.0.0.1:{port}/api/v1/alerts"
                            for port, role in zip(ports, roles, strict=True)
                            if role in posted], lambda: count_postgres(url))


def count_postgres(url: str) -> int:
    import psycopg

    with psycopg.connect(url, connect_timeout=10) as conn:
        row = conn.execute("SELECT COUNT(*) FROM inbox").fetchone()
        return int(row[0]) if row else 0


POSTGRES_SETUPS = [
    ("postgres, 1 replica", ["all"], ["all"]),
    ("postgres, 3 replicas", ["all", "all", "all"], ["all"]),
    ("postgres, 2 intake + 1 worker", ["intake", "intake", "worker"], ["intake"]),
]


@contextlib.contextmanager
def postgres_cluster() -> Iterator[Any]:
    """A private PostgreSQL 15 cluster (the test suite's, tests/harness/postgres.py)."""
    sys.path.insert(0, str(ROOT))
    from tests.harness.postgres import remove_cluster, start_cluster

    cluster = start_cluster()
    try:
        yield cluster
    finally:
        remove_cluster(cluster)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--senders", default="1,10,50")
    parser.add_argument("--no-postgres", action="store_true",
                        help="only SQLite (as before issue 19)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("bench: wrk is not installed (make host installs it)")
    senders = [int(s) for s in args.senders.split(",")]
    tmp = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    noop_port = free_port()
    try:
        with contextlib.ExitStack() as stack:
            stack.enter_context(processes([start_noop(noop_port)]))
            wait_up(f"http://127.0.0.1:{noop_port}/")
            factories: list[tuple[str, SetupFactory]] = [("sqlite, 1 process", sqlite_setup)]
            if not args.no_postgres:
                cluster = stack.enter_context(postgres_cluster())
                factories += [(label, functools.partial(postgres_setup, cluster=cluster,
                                                        label=label, roles=roles,
                                                        posted=posted))
                              for label, roles, posted in POSTGRES_SETUPS]
            report(tmp, factories, noop_port, senders, args.seconds)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


def report(tmp: Path, factories: list[tuple[str, SetupFactory]], noop_port: int,
           senders: list[int], seconds: int) -> None:
    """Per sender count: the ceiling, then each setup started afresh (a new store, no
    backlog from another setup's run working beside it), measured, checked and stopped."""
    print(f"bench-ingest: POST /api/v1/alerts, {seconds}s per run, gunicorn 1 process x "
          f"{THREADS} threads per Remediator process, {os.cpu_count()} cores; each setup "
          f"on a new store per run")
    print(f"{'setup':<30} {'senders':>7} {'alerts/s':>10} {'p50 ms':>8} {'p99 ms':>8} "
          f"{'ceiling/s':>10} {'ratio':>6} {'ceil p99':>8}  stored")
    lost = 0
    for count in senders:
        ceiling = wrk(f"http://127.0.0.1:{noop_port}/api/v1/alerts", count, seconds)
        for n, (label, factory) in enumerate(factories):
            with factory(tmp / f"{count}-{n}") as setup:
                real = spread(setup.urls, count, seconds)
                time.sleep(1)
                # wrk stops counting at the deadline: requests in flight then were answered
                # (and stored) but not counted, at most one per sender. Fewer stored than
                # acked is a loss.
                extra = setup.stored() - int(real["acked"])
            ok = 0 <= extra <= count
            lost += not ok
            print(f"{label:<30} {count:>7} {real['rps']:>10.0f} {real['p50_ms']:>8.2f} "
                  f"{real['p99_ms']:>8.2f} {ceiling['rps']:>10.0f} "
                  f"{real['rps'] / ceiling['rps']:>6.0%} {ceiling['p99_ms']:>8.2f}  "
                  + (f"every 202 (+{extra} in flight)" if ok else f"LOSS ({extra})"))
    print("OK: every acked alert is stored, in every setup" if not lost
          else f"LOSS in {lost} runs")


if __name__ == "__main__":
    sys.exit(main())
