#!/usr/bin/env python3
"""Failover figures: replicas of `remediator serve` on one PostgreSQL database; an execution
with a slow step runs on one of them; that replica's process group is SIGKILLed mid-step.
Printed: the time from its death to the execution running the interrupted step again on
another replica, and to the execution finished there (median and max over --kills).

A private PostgreSQL 15 cluster (tests/harness/postgres.py) in a temp folder on a loopback
port, one fresh database per repetition; no Docker needed (the playbook only `wait`s).

    python bench/bench_failover.py [--replicas 3] [--kills 3] [--step-seconds 5]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests.harness.postgres: the suite's private cluster

import bench_reliability  # noqa: E402  (the sibling script: alert bodies, waiting)
from tests.harness.postgres import Cluster, remove_cluster, start_cluster  # noqa: E402

BIN = Path(sys.executable).parent
TOKEN = bench_reliability.TOKEN
AUTH = bench_reliability.AUTH
PLAYBOOK = """
name: failover
match: {alertname: FailoverAlert}
steps:
  - {id: first, phase: diagnose, action: wait, with: {duration: 1s}}
  - {id: slow, phase: diagnose, action: wait, with: {duration: %ss}}
"""


@dataclass
class Replica:
    """One `remediator serve --replica-id ID` in its own process group."""

    replica_id: str
    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()


def start_replica(tmp: Path, replica_id: str, db_url: str, env: dict[str, str]) -> Replica:
    port = bench_reliability.free_port()
    argv = [str(BIN / "remediator"), "serve", "--host", "127.0.0.1", "--port", str(port),
            "--db", db_url, "--config", str(tmp / "remediator.yml"), "--playbooks",
            str(tmp / "playbooks"), "--replica-id", replica_id, "--role", "all"]
    full_env = {**os.environ, **env, "REMEDIATOR_WEBHOOK_TOKEN": TOKEN, "LOG_LEVEL": "WARNING"}
    with (tmp / f"{replica_id}.log").open("ab") as log:
        process = subprocess.Popen(argv, env=full_env, stdout=log, stderr=subprocess.STDOUT,
                                   cwd=tmp, start_new_session=True)
    return Replica(replica_id, port, process)


@contextlib.contextmanager
def replicas(tmp: Path, count: int, db_url: str, env: dict[str, str]) -> Iterator[list[Replica]]:
    started = [start_replica(tmp, f"r{n + 1}", db_url, env) for n in range(count)]
    try:
        for replica in started:
            bench_reliability.wait_until(lambda r=replica: ready(r), 90,  # type: ignore[misc]
                                         f"replica {replica.replica_id} to be ready")
        yield started
    finally:
        for replica in started:
            replica.stop()


def ready(replica: Replica) -> bool:
    if replica.process.poll() is not None:
        raise SystemExit(f"bench: replica {replica.replica_id} exited; see its log")
    with contextlib.suppress(requests.RequestException):
        return requests.get(f"{replica.url}/readyz", timeout=1).status_code == 200
    return False


def newest_execution(live: list[Replica]) -> dict[str, Any] | None:
    for replica in live:
        if replica.process.poll() is not None:
            continue
        with contextlib.suppress(requests.RequestException, ValueError, IndexError, KeyError):
            items = requests.get(f"{replica.url}/api/v1/executions?limit=1", headers=AUTH,
                                 timeout=5).json()["items"]
            return dict(items[0]) if items else None
    return None


def step(execution: dict[str, Any] | None, step_id: str) -> dict[str, Any]:
    for found in (execution or {}).get("steps", []):
        if found["id"] == step_id:
            return dict(found)
    return {}


def owner(db_url: str, execution: dict[str, Any] | None) -> str | None:
    """The replica holding the execution's lease (the store's executions.lease_owner)."""
    import psycopg

    if not execution:
        return None
    with psycopg.connect(db_url, connect_timeout=10) as conn:
        row = conn.execute("SELECT lease_owner FROM executions WHERE id = %s",
                           (execution["id"],)).fetchone()
    return str(row[0]) if row and row[0] else None


def once(root: Path, cluster: Cluster, n: int, count: int,
         step_s: int) -> tuple[float, float, str, str]:
    """(death -> the interrupted step running again, death -> finished, killed, finisher)."""
    tmp = root / f"run-{n}"
    (tmp / "playbooks").mkdir(parents=True)
    (tmp / "playbooks" / "failover.yml").write_text(PLAYBOOK % step_s)
    (tmp / "remediator.yml").write_text("alertmanager_url: http://127.0.0.1:1\ntargets:\n"
                                        + bench_reliability.target("failover"))
    db_url = cluster.create_database()
    with replicas(tmp, count, db_url, cluster.env()) as live:
        requests.post(f"{live[n % count].url}/api/v1/alerts", headers=AUTH, timeout=10,
                      data=bench_reliability.body("FailoverAlert", "failover", n)
                      ).raise_for_status()
        bench_reliability.wait_until(
            lambda: step(newest_execution(live), "slow").get("status") == "running", 60,
            "the slow step to start")
        time.sleep(min(1.0, step_s / 4))  # well inside it
        victim_id = owner(db_url, newest_execution(live))
        victim = next(r for r in live if r.replica_id == victim_id)
        victim.kill()
        died = time.monotonic()
        bench_reliability.wait_until(
            lambda: (newest_execution(live) or {}).get("state") == "finished",
            step_s + 300, "the execution to finish on another replica", interval=0.05)
        finished = time.monotonic() - died
        done = newest_execution(live) or {}
        slow = step(done, "slow")
        # The interrupted step ran again from its start and took its duration after it
        # restarted; the execution ended right after it.
        resumed = finished - float(slow.get("duration_s") or step_s)
        if done.get("outcome") != "success" or slow.get("status") != "ok":
            raise SystemExit(f"bench: the execution did not succeed after failover: {done}")
        finisher = owner(db_url, done) or "?"
        return resumed, finished, str(victim_id), finisher


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--step-seconds", type=int, default=5)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-failover-"))
    cluster = start_cluster()
    from remediator.core.defaults import EXECUTION_LEASE_S, LEASE_RENEW_FRACTION

    print(f"bench-failover: {args.replicas} replicas (role all) on one PostgreSQL 15 database, "
          f"{os.cpu_count()} cores; a {args.step_seconds}s step SIGKILLed mid-run, "
          f"{args.kills} times; execution lease {EXECUTION_LEASE_S:g}s, renewed every "
          f"{EXECUTION_LEASE_S * LEASE_RENEW_FRACTION:g}s")
    results = []
    try:
        for n in range(args.kills):
            resumed, finished, victim, finisher = once(root, cluster, n, args.replicas,
                                                       args.step_seconds)
            results.append((resumed, finished))
            print(f"  kill {n + 1}: {victim} killed; resumed on {finisher} after "
                  f"{resumed:.2f}s, finished after {finished:.2f}s")
    finally:
        remove_cluster(cluster)
        shutil.rmtree(root, ignore_errors=True)
    resumed_s, finished_s = zip(*results, strict=True)
    print(f"death -> execution running its step again on another replica: median "
          f"{statistics.median(resumed_s):.2f}s, max {max(resumed_s):.2f}s")
    print(f"death -> execution finished there: median {statistics.median(finished_s):.2f}s, "
          f"max {max(finished_s):.2f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
