"""Ingest figures: `remediator serve` under wrk at 1, 10 and 50 senders, beside the ceiling.

The ceiling is a no-op endpoint served the same way (gunicorn, one process, same threads),
measured in the same run, so the ratio holds on a noisy shared machine. After the runs, the
store must hold exactly the alerts that got a 202.

    python bench/bench_ingest.py [--seconds 10] [--senders 1,10,50]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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


def start_remediator(tmp: Path, port: int) -> subprocess.Popen[bytes]:
    config = tmp / "remediator.yml"
    config.write_text("targets: []\n")
    (tmp / "playbooks").mkdir()
    argv = [str(BIN / "remediator"), "serve", "--host", "127.0.0.1", "--port", str(port),
            "--db", str(tmp / "bench.db"), "--config", str(config), "--playbooks",
            str(tmp / "playbooks"), "--threads", str(THREADS)]
    env = {**os.environ, "REMEDIATOR_WEBHOOK_TOKEN": TOKEN, "LOG_LEVEL": "WARNING"}
    return subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def start_noop(port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, str(ROOT / "bench" / "noop_server.py"), str(port),
                             str(THREADS)], env={**os.environ, "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wrk(url: str, senders: int, seconds: int) -> dict[str, float]:
    out = subprocess.run(
        ["wrk", "-t", str(min(senders, 2)), "-c", str(senders), "-d", f"{seconds}s",
         "--latency", "-s", str(ROOT / "bench" / "ingest.lua"),
         "-H", f"Authorization: Bearer {TOKEN}", url],
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


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--senders", default="1,10,50")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("bench: wrk is not installed (make host installs it)")
    tmp = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    rem_port, noop_port = free_port(), free_port()
    procs = [start_remediator(tmp, rem_port), start_noop(noop_port)]
    try:
        wait_up(f"http://127.0.0.1:{rem_port}/healthz")
        wait_up(f"http://127.0.0.1:{noop_port}/")
        report(tmp, rem_port, noop_port, [int(s) for s in args.senders.split(",")],
               args.seconds)
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=20)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


def report(tmp: Path, rem_port: int, noop_port: int, senders: list[int], seconds: int) -> None:
    print(f"bench-ingest: POST /api/v1/alerts, {seconds}s per run, gunicorn 1 process x "
          f"{THREADS} threads, {os.cpu_count()} cores")
    print(f"{'senders':>7} {'alerts/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'ceiling/s':>10} "
          f"{'ratio':>6} {'ceil p99':>8}")
    acked = 0
    for count in senders:
        ceiling = wrk(f"http://127.0.0.1:{noop_port}/api/v1/alerts", count, seconds)
        real = wrk(f"http://127.0.0.1:{rem_port}/api/v1/alerts", count, seconds)
        acked += int(real["acked"])
        print(f"{count:>7} {real['rps']:>10.0f} {real['p50_ms']:>8.2f} {real['p99_ms']:>8.2f} "
              f"{ceiling['rps']:>10.0f} {real['rps'] / ceiling['rps']:>6.0%} "
              f"{ceiling['p99_ms']:>8.2f}")
    time.sleep(1)
    stored = sqlite3.connect(tmp / "bench.db").execute("SELECT COUNT(*) FROM inbox").fetchone()[0]
    # wrk stops counting at the deadline: requests in flight then were answered (and stored)
    # but not counted, at most one per sender per run. Fewer stored than acked is a loss.
    extra = stored - acked
    verdict = "OK: every acked alert is stored" if 0 <= extra <= sum(senders) else "LOSS"
    print(f"acked (202) {acked}, stored in the inbox {stored} ({extra} in flight when wrk "
          f"stopped): {verdict}")


if __name__ == "__main__":
    sys.exit(main())
