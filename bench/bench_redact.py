#!/usr/bin/env python3
"""Redaction time against input size: ``redact`` must be linear in its input.

Every label, annotation and captured output goes through ``remediator.core.redact.redact``
before it is rendered; a quadratic pattern there let one alert stall the whole service. For
each size from 1 KB to 1 MB, two inputs are timed (best of --repeat): ordinary log text with
a few secrets in it, and hostile separator-rich text (``a-a-a-...``, ``x.y:x.y:...``, the
shapes that made the old patterns rescan a run from each of its positions). Then the
1 MB / 10 KB ratio: about 100 when linear, about 10,000 when quadratic.

    python bench/bench_redact.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.append(str(ROOT / "app"))  # a plain checkout works too; an install still wins

from remediator.core.redact import redact  # noqa: E402

SIZES = [1_000, 10_000, 100_000, 1_000_000]
LOG_LINE = ("2026-12-06 09:00:00 INFO loading /app/models/best_model.pth (int8) from "
            "http://app-prod:8080/health ok; SMTP_PASSWORD=hunter2 retry=3 key: 'a-b'\n")
HOSTILE = "a-" * 8 + "x.y:" * 4 + "a://b:" + "password=\"" + "eyJ-"


def _text(unit: str, size: int) -> str:
    return (unit * (size // len(unit) + 1))[:size]


def _best(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"{'size':>10}  {'log text':>10}  {'hostile':>10}")
    results: dict[str, dict[int, float]] = {"log text": {}, "hostile": {}}
    for size in SIZES:
        for name, unit in (("log text", LOG_LINE), ("hostile", HOSTILE)):
            text = _text(unit, size)
            results[name][size] = _best(lambda text=text: redact(text), args.repeat)
        print(f"{size:>10,}  {results['log text'][size] * 1000:>8.2f}ms"
              f"  {results['hostile'][size] * 1000:>8.2f}ms")
    for name, times in results.items():
        ratio = times[1_000_000] / max(times[10_000], 1e-9)
        print(f"{name}: 1 MB / 10 KB = {ratio:.0f} (linear ~100, quadratic ~10,000)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
