#!/usr/bin/env python3
"""Reliability figures of `remediator serve` (one gunicorn process, as shipped).

1. Ingest while the worker is busy: both execution threads run long playbooks and the
   incoming alerts match a target and a playbook (incidents, pending executions, the
   budget, the escalation timer all at work); wrk posts for --seconds at each sender count.
   Alerts/s and p99, then: every 202 is in the store.
2. The largest burst accepted with no loss: N alerts (distinct) posted as fast as possible
   by --threads sender threads into a fresh server, no retries; a burst counts only if
   every post got a 202, every 202 is in the inbox and intake turned each into an incident.
3. Recovery after SIGKILL: an execution is mid-step when the process group is killed; the
   time from the restart to the server answering, and to the interrupted execution
   running the interrupted step again.

No Docker needed: the playbooks only `wait` (a core action), so nothing touches a target.

    python bench/bench_reliability.py [--seconds 5] [--senders 10,50]
        [--bursts 1000,5000,10000] [--threads 16] [--kills 3]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

import bench_ingest  # the sibling script (python puts bench/ first on sys.path)

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
TOKEN = "bench-token"
AUTH = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
THREADS = 8  # gunicorn threads, as `remediator serve` defaults

BUSY = """
name: busy
match: {alertname: BusyAlert}
steps:
  - {id: hold, phase: diagnose, action: wait, with: {duration: 10m}}
"""
BENCH = """
name: bench
match: {alertname: BenchAlert}
steps:
  - {id: hold, phase: diagnose, action: wait, with: {duration: 1s}}
"""
RESUME = """
name: resume
match: {alertname: ResumeAlert}
steps:
  - {id: first, phase: diagnose, action: wait, with: {duration: 1s}}
  - {id: second, phase: diagnose, action: wait, with: {duration: 2s}}
"""


def target(name: str) -> str:
    return (f"  - name: {name}\n    selector: {{service: {name}}}\n    container: {name}\n"
            f"    base_url: http://127.0.0.1:1\n")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def iso_now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def body(alertname: str, service: str, seq: int) -> bytes:
    return json.dumps({
        "version": "4", "receiver": "remediator", "status": "firing", "groupKey": "{}:{}",
        "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {},
        "externalURL": "http://bench", "truncatedAlerts": 0,
        "alerts": [{"status": "firing", "labels": {"alertname": alertname,
                                                   "service": service, "seq": str(seq)},
                    "annotations": {}, "startsAt": iso_now(),
                    "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "",
                    "fingerprint": f"{seq:016x}"}],
    }).encode()


@dataclass
class Server:
    """A `remediator serve` in its own process group, on its own folder."""

    tmp: Path
    config: str
    playbooks: dict[str, str]
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def db(self) -> Path:
        return self.tmp / "remediator.db"

    def start(self) -> float:
        """Start; returns seconds until /healthz answered."""
        books = self.tmp / "playbooks"
        books.mkdir(parents=True, exist_ok=True)
        for name, text in self.playbooks.items():
            (books / name).write_text(text)
        (self.tmp / "remediator.yml").write_text(self.config)
        argv = [str(BIN / "remediator"), "serve", "--host", "127.0.0.1", "--port",
                str(self.port), "--db", str(self.db), "--config",
                str(self.tmp / "remediator.yml"), "--playbooks", str(books), "--threads",
                str(THREADS)]
        env = {**os.environ, "REMEDIATOR_WEBHOOK_TOKEN": TOKEN, "LOG_LEVEL": "WARNING"}
        started = time.monotonic()
        with (self.tmp / "serve.log").open("ab") as log:
            self.process = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT,
                                            cwd=self.tmp, start_new_session=True)
        deadline = started + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return time.monotonic() - started
            if self.process.poll() is not None:
                break
            time.sleep(0.01)
        raise SystemExit(f"bench: remediator serve did not come up; see {self.tmp}/serve.log")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()

    def api(self, path: str) -> Any:
        return requests.get(f"{self.url}{path}", headers=AUTH, timeout=10).json()

    def count(self, sql: str) -> int:
        with contextlib.closing(sqlite3.connect(self.db, timeout=30)) as db:
            return int(db.execute(sql).fetchone()[0])


@contextlib.contextmanager
def server(root: Path, name: str, config: str, playbooks: dict[str, str]) -> Iterator[Server]:
    srv = Server(root / name, config, playbooks)
    srv.tmp.mkdir(parents=True)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def wait_until(predicate: Any, timeout: float, what: str, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"bench: timed out waiting for {what}")
        time.sleep(interval)


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * pct / 100))] if ordered else 0.0


# -- 1. ingest while executions run -------------------------------------------------------
# wrk with bench/ingest.lua, the same driver bench_ingest uses (same token).
wrk = bench_ingest.wrk


def ingest_while_busy(root: Path, senders: list[int], seconds: int) -> None:
    # ingest.lua posts BenchAlert for service "bench": a target with a playbook, so each
    # alert is an incident and (within the budget) a pending execution. The same config
    # with an idle worker, measured in the same run, is the baseline.
    config = ("alertmanager_url: http://127.0.0.1:1\nconcurrency: 2\ntargets:\n"
              + target("busy-1") + target("busy-2") + target("bench"))
    books = {"busy.yml": BUSY, "bench.yml": BENCH}
    with server(root, "idle", config, books) as idle, server(root, "busy", config, books) as busy:
        for n, name in enumerate(("busy-1", "busy-2")):
            requests.post(f"{busy.url}/api/v1/alerts", data=body("BusyAlert", name, n),
                          headers=AUTH, timeout=10).raise_for_status()
        wait_until(lambda: busy.count("SELECT COUNT(*) FROM executions WHERE state = "
                                      "'running'") == 2, 30, "both executions to run")
        print(f"\n1. ingest while both execution threads run 10-minute playbooks, beside the "
              f"same config with an idle worker (wrk, {seconds}s per run; each alert is an "
              f"incident of a target with a playbook)")
        print(f"{'senders':>7} {'busy/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'idle/s':>8} "
              f"{'p99 ms':>8} {'ratio':>6}")
        wrk(f"{idle.url}/api/v1/alerts", 2, 1)  # warm both up alike (first pass, caches)
        warm = wrk(f"{busy.url}/api/v1/alerts", 2, 1)
        acked = int(warm["acked"])
        for count in senders:
            base = wrk(f"{idle.url}/api/v1/alerts", count, seconds)
            real = wrk(f"{busy.url}/api/v1/alerts", count, seconds)
            acked += int(real["acked"])
            print(f"{count:>7} {real['rps']:>8.0f} {real['p50_ms']:>8.2f} {real['p99_ms']:>8.2f} "
                  f"{base['rps']:>8.0f} {base['p99_ms']:>8.2f} {real['rps'] / base['rps']:>6.0%}")
        running = busy.count("SELECT COUNT(*) FROM executions WHERE state = 'running'")
        time.sleep(1)
        stored = busy.count("SELECT COUNT(*) FROM inbox") - 2
        notices = busy.count("SELECT COUNT(*) FROM notifications")
        extra = stored - acked  # wrk does not count answers in flight at its deadline
        # at most one answer in flight per sender per run, the warm-up's 2 senders included
        verdict = "OK" if 0 <= extra <= sum(senders) + 2 else "LOSS"
        print(f"   busy: 202s {acked}, stored {stored} ({extra} in flight when wrk stopped): "
              f"{verdict}; executions still running: {running}; notifications accepted "
              f"meanwhile: {notices}")
        busy.kill()  # its 10-minute steps would hold a graceful stop


# -- 2. the largest burst accepted with no loss -------------------------------------------
def burst(root: Path, size: int, threads: int) -> dict[str, Any]:
    config = "alertmanager_url: http://127.0.0.1:1\ntargets: []\n"
    with server(root, f"burst-{size}", config, {}) as srv:
        bodies = [body("BenchAlert", "bench", n) for n in range(size)]
        latencies: list[float] = []
        codes: dict[int, int] = {}
        lock = threading.Lock()
        cursor = iter(range(size))

        def send() -> None:
            session = requests.Session()
            mine: list[float] = []
            seen: dict[int, int] = {}
            while True:
                with lock:
                    index = next(cursor, None)
                if index is None:
                    break
                began = time.perf_counter()
                try:
                    code = session.post(f"{srv.url}/api/v1/alerts", data=bodies[index],
                                        headers=AUTH, timeout=60).status_code
                except requests.RequestException:
                    code = 0
                mine.append(time.perf_counter() - began)
                seen[code] = seen.get(code, 0) + 1
            with lock:
                latencies.extend(mine)
                for code, n in seen.items():
                    codes[code] = codes.get(code, 0) + n

        workers = [threading.Thread(target=send) for _ in range(threads)]
        began = time.monotonic()
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        elapsed = time.monotonic() - began
        acked = codes.get(202, 0)
        stored = srv.count("SELECT COUNT(*) FROM inbox")
        wait_until(lambda: srv.count("SELECT COUNT(*) FROM inbox WHERE processed_at IS NULL")
                   == 0, 300, "intake to drain the burst")
        drained = time.monotonic() - began
        incidents = srv.count("SELECT COUNT(*) FROM incidents")
        return {"size": size, "acked": acked, "stored": stored, "incidents": incidents,
                "seconds": elapsed, "drained": drained, "p99_ms": percentile(latencies, 99) * 1e3,
                "codes": codes,
                "no_loss": acked == size == stored == incidents}


def bursts(root: Path, sizes: list[int], threads: int) -> None:
    print(f"\n2. bursts: N distinct alerts posted at once by {threads} threads, no retries")
    print(f"{'alerts':>7} {'202s':>7} {'stored':>7} {'incid.':>7} {'post s':>7} {'alerts/s':>9} "
          f"{'p99 ms':>8} {'drained s':>9}  verdict")
    largest = 0
    for size in sizes:
        r = burst(root, size, threads)
        verdict = "no loss" if r["no_loss"] else f"LOSS or refusals {r['codes']}"
        if r["no_loss"]:
            largest = max(largest, size)
        print(f"{size:>7} {r['acked']:>7} {r['stored']:>7} {r['incidents']:>7} "
              f"{r['seconds']:>7.1f} {size / r['seconds']:>9.0f} {r['p99_ms']:>8.1f} "
              f"{r['drained']:>9.1f}  {verdict}")
    print(f"   largest burst accepted with no loss: {largest} alerts")


# -- 3. recovery after SIGKILL ------------------------------------------------------------
def recover_once(root: Path, n: int) -> tuple[float, float]:
    """(restart -> /healthz, restart -> the interrupted step running again), in seconds.

    The step that was cut is run again from its start on resume; it ends ``duration_s``
    after it restarted, so restart-to-resume is its end, as seen, minus that duration.
    """
    config = "alertmanager_url: http://127.0.0.1:1\ntargets:\n" + target("resume")
    with server(root, f"recovery-{n}", config, {"resume.yml": RESUME}) as srv:
        requests.post(f"{srv.url}/api/v1/alerts", data=body("ResumeAlert", "resume", n),
                      headers=AUTH, timeout=10).raise_for_status()
        wait_until(lambda: step_state(srv, "second")[0] == "running", 60,
                   "the step to start")
        time.sleep(0.5)  # well inside it
        srv.kill()
        began = time.monotonic()
        up = srv.start()
        wait_until(lambda: step_state(srv, "second")[0] == "ok", 60,
                   "the interrupted step to run again and end", interval=0.01)
        ended = time.monotonic() - began
        return up, ended - step_state(srv, "second")[1]


def recovery(root: Path, kills: int) -> None:
    up, resumed = zip(*(recover_once(root, n) for n in range(kills)), strict=True)
    print(f"\n3. recovery after SIGKILL of the process group mid-step ({kills} kills)")
    print(f"   restart -> answering /healthz: median {statistics.median(up):.2f}s, "
          f"max {max(up):.2f}s")
    print(f"   restart -> interrupted execution running its step again: median "
          f"{statistics.median(resumed):.2f}s, max {max(resumed):.2f}s")


def step_state(srv: Server, step_id: str) -> tuple[str | None, float]:
    """(status, duration_s) of ``step_id`` in the newest execution."""
    with contextlib.suppress(requests.RequestException, ValueError, IndexError, KeyError):
        execution = srv.api("/api/v1/executions?limit=1")["items"][0]
        for step in execution["steps"]:
            if step["id"] == step_id:
                return str(step["status"]), float(step["duration_s"] or 0.0)
    return None, 0.0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--senders", default="10,50")
    parser.add_argument("--bursts", default="1000,5000,10000")
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--kills", type=int, default=3)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("bench: wrk is not installed (make host installs it)")
    root = Path(tempfile.mkdtemp(prefix="bench-reliability-"))
    print(f"bench-reliability: remediator serve, gunicorn 1 process x {THREADS} threads, "
          f"{os.cpu_count()} cores (senders share them)")
    try:
        ingest_while_busy(root, [int(s) for s in args.senders.split(",")], args.seconds)
        bursts(root, [int(s) for s in args.bursts.split(",")], args.threads)
        recovery(root, args.kills)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
