#!/usr/bin/env python3
"""Per-variant figures of the shipped models: file size, load time, resident memory,
batch-1 latency (p50/p99, one torch thread) and exact-match accuracy.

Each variant is measured in its own fresh Python process so resident memory and the first
load are not flattered by a previous variant; warm load times are then taken in one more
process, variants interleaved, so background load on the machine hits them alike.
Prints a table, then the issue's targets: int2 file <= 1/8 of fp32 and loading no slower;
int8 within 2 points of fp32; p99 < 20 ms.

    python bench/bench_model.py [--model-dir models] [--requests 500] [--strict]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.append(str(ROOT / "app"))  # a plain checkout works too; an install still wins
VARIANTS = ("best_model", "int8_quantized", "int2_quantized")


def _rss_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def measure(name: str, model_dir: Path, requests: int) -> dict[str, Any]:
    """All figures for one variant (runs inside the child process)."""
    import torch
    from PIL import Image

    from mobile_multimodal.data import generate
    from mobile_multimodal.model import MobileMultiModalLLM, resolve_model_path
    from mobile_multimodal.training import EVAL_SEED, evaluate_network

    torch.set_num_threads(1)
    images, captions, _ = generate(2000, EVAL_SEED)
    rss_before = _rss_bytes()
    start = time.perf_counter()
    model = MobileMultiModalLLM.from_pretrained(name, model_dir=model_dir)
    first_load = time.perf_counter() - start
    rss_after = _rss_bytes()
    pil = [Image.fromarray(images[i % len(images)]) for i in range(requests + 20)]
    latencies = []
    for i, image in enumerate(pil):
        start = time.perf_counter()
        model.caption(image)
        if i >= 20:  # the first calls warm up allocator and caches
            latencies.append(time.perf_counter() - start)
    return {
        "name": name, "variant": model.variant,
        "file_bytes": resolve_model_path(name, model_dir).stat().st_size,
        "first_load_ms": first_load * 1e3,
        "model_rss_mb": (rss_after - rss_before) / 2**20, "process_rss_mb": rss_after / 2**20,
        "p50_ms": _percentile(latencies, 0.50) * 1e3, "p99_ms": _percentile(latencies, 0.99) * 1e3,
        "accuracy": evaluate_network(model.network, model.vocabulary, images, captions),
    }


def measure_loads(model_dir: Path, rounds: int) -> dict[str, float]:
    """Median warm load time per variant, variants interleaved round by round so that
    background load on the machine hits all of them alike."""
    import torch

    from mobile_multimodal.model import MobileMultiModalLLM

    torch.set_num_threads(1)
    times: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for _ in range(rounds):
        for name in VARIANTS:
            start = time.perf_counter()
            MobileMultiModalLLM.from_pretrained(name, model_dir=model_dir)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) * 1e3 for name, t in times.items()}


def _child(*args: str) -> Any:
    done = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True,
                          check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _table(rows: list[dict[str, Any]]) -> None:
    print(f"{'model':16s} {'variant':7s} {'file':>10s} {'load':>8s} {'1st load':>9s} "
          f"{'model RSS':>10s} {'proc RSS':>9s} {'p50':>7s} {'p99':>7s} {'accuracy':>9s}")
    for r in rows:
        print(f"{r['name']:16s} {r['variant']:7s} {r['file_bytes'] / 1024:8.1f}KB "
              f"{r['load_ms']:6.2f}ms {r['first_load_ms']:7.2f}ms {r['model_rss_mb']:8.1f}MB "
              f"{r['process_rss_mb']:7.1f}MB {r['p50_ms']:5.2f}ms {r['p99_ms']:5.2f}ms "
              f"{r['accuracy'] * 100:8.2f}%")


def _targets(by: dict[str, dict[str, Any]]) -> list[tuple[str, bool]]:
    fp32, int8, int2 = by["best_model"], by["int8_quantized"], by["int2_quantized"]
    return [
        (f"int2 file <= 1/8 of fp32 ({int2['file_bytes'] / fp32['file_bytes']:.3f})",
         int2["file_bytes"] * 8 <= fp32["file_bytes"]),
        (f"int2 loads no slower than fp32 ({int2['load_ms']:.2f} vs {fp32['load_ms']:.2f} ms)",
         int2["load_ms"] <= fp32["load_ms"] * 1.05),
        (f"int8 accuracy within 2 points of fp32 "
         f"({(int8['accuracy'] - fp32['accuracy']) * 100:+.2f})",
         int8["accuracy"] >= fp32["accuracy"] - 0.02),
        (f"fp32 accuracy >= 90% ({fp32['accuracy'] * 100:.2f}%)", fp32["accuracy"] >= 0.90),
        ("p99 < 20 ms for every variant", all(r["p99_ms"] < 20 for r in by.values())),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=ROOT / "models")
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--strict", action="store_true", help="exit 1 if a target is missed")
    parser.add_argument("--load-rounds", type=int, default=100)
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--loads", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one, args.model_dir, args.requests)))
        return 0
    if args.loads:
        print(json.dumps(measure_loads(args.model_dir, args.load_rounds)))
        return 0
    common = ["--model-dir", str(args.model_dir), "--requests", str(args.requests)]
    rows = [_child("--one", name, *common) for name in VARIANTS]
    loads = _child("--loads", "--load-rounds", str(args.load_rounds), *common)
    for row in rows:
        row["load_ms"] = loads[row["name"]]
    _table(rows)
    results = _targets({r["name"]: r for r in rows})
    for text, ok in results:
        print(f"[{'PASS' if ok else 'MISS'}] {text}")
    return 1 if args.strict and not all(ok for _, ok in results) else 0


if __name__ == "__main__":
    sys.exit(main())
