#!/usr/bin/env python3
"""Time to fix, per runbook scenario, beside a plain restart (`make bench-scenarios`).

For each scenario, on a fresh healthy container in app-prod's shape owned by a fresh
`remediator serve` (tests/harness/scenarios.py, as the integration tests run it):

  floor      a plain `docker restart` of the healthy app until /health answers healthy
             (polled every 50 ms): what any fix that restarts the app cannot beat
  fix        from the alert's 202 (posted once the fault shows, as Prometheus would fire
             it) to the end of the execution's last validation step (/health healthy on the
             primary model, /model/health, inference, metrics)
  overhead   fix - floor; the target is under 2 s for every scenario

Needs Docker and the images (`make images`). Prints a table; exits 1 if a fix failed.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "app"))  # devstack: the demo's fault injectors

import docker  # noqa: E402
import docker.errors  # noqa: E402
import pytest  # noqa: E402
import requests  # noqa: E402

from devstack.demo import WITHOUT_PILLOW  # noqa: E402
from tests.harness.docker_engine import MODELSERVER_IMAGE, Resources, remove_labelled  # noqa: E402
from tests.harness.scenarios import RUNBOOK_HEALTHY, Rig, alert_payload, scenario_rig  # noqa: E402

TARGET_S = 2.0


@dataclass(frozen=True)
class Case:
    fault: str
    alert: str = "load-failure"
    runbook: str = ""
    environment: dict[str, str] | None = None
    config_on_host: bool = False


CASES = [
    Case("missing-file", runbook="1 missing file"),
    Case("corrupted-backup", runbook="1 corrupted + bad backup"),
    Case("oom", runbook="2 out of memory"),
    Case("cuda", runbook="3 CUDA", config_on_host=True),
    Case("permissions", runbook="4 permissions"),
    Case("old-format", runbook="5 model format"),
    Case("missing-dependency", runbook="6 dependency"),
    Case("invalid-config", runbook="7 configuration"),
    Case("slow-load", alert="load-time", runbook="load time"),
    Case("memory-growth", alert="memory", runbook="memory",
         environment={"MODEL_DEBUG_FAULTS": "1"}),
]


@dataclass(frozen=True)
class Row:
    case: Case
    floor_s: float
    fix_s: float
    outcome: str
    scenario: str
    slowest: str
    steps: str = ""

    @property
    def overhead_s(self) -> float:
        return self.fix_s - self.floor_s


def restart_floor(rig: Rig) -> float:
    """A plain restart of the healthy app until /health answers healthy."""
    started = time.monotonic()
    rig.app.restart(timeout=10)
    while time.monotonic() - started < 120:
        try:
            if requests.get(f"{rig.app_url}/health", timeout=2).json() == RUNBOOK_HEALTHY:
                return time.monotonic() - started
        except (requests.RequestException, ValueError):
            pass
        time.sleep(0.05)
    raise RuntimeError("the app did not come back from a plain restart")


def run_case(case: Case, resources: Resources, image: str) -> Row:
    monkeypatch = pytest.MonkeyPatch()
    try:
        with tempfile.TemporaryDirectory(prefix=f"bench-{case.fault}-") as tmp, \
                scenario_rig(Path(tmp), resources, image, case.fault, monkeypatch,
                             environment=case.environment,
                             config_on_host=case.config_on_host) as rig:
            floor = restart_floor(rig)
            fault_at = rig.inject(case.fault)
            rig.post_alert(alert_payload(case.alert, fault_at))
            execution = rig.wait_execution()
            steps = sorted(execution["steps"], key=lambda s: -s["duration_s"])[:2]
            slowest = ", ".join(f"{s['id']} {s['duration_s']:.1f}s" for s in steps)
            every = " ".join(f"{s['id']}={s['duration_s']:.2f}" for s in execution["steps"]
                             if s["status"] != "skipped")
            return Row(case, floor, rig.seconds_to_validated(execution),
                       execution["outcome"], execution["scenario"] or "-", slowest, every)
    finally:
        monkeypatch.undo()
        resources.cleanup()


def table(rows: list[Row]) -> str:
    head = (f"{'scenario':<26} {'found':<26} {'outcome':<8} {'floor s':>8} {'fix s':>7} "
            f"{'over s':>7}  {'<2s':<4} slowest steps")
    lines = [head, "-" * len(head)]
    for row in rows:
        met = "yes" if row.overhead_s < TARGET_S else "NO"
        lines.append(f"{row.case.runbook:<26} {row.scenario:<26} {row.outcome:<8} "
                     f"{row.floor_s:8.2f} {row.fix_s:7.2f} {row.overhead_s:7.2f}  {met:<4} "
                     f"{row.slowest}")
    floors = [row.floor_s for row in rows]
    lines.append(f"floor (plain restart until healthy): median {statistics.median(floors):.2f}s,"
                 f" min {min(floors):.2f}s, max {max(floors):.2f}s over {len(floors)} restarts")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", choices=[c.fault for c in CASES],
                        help="run these faults only")
    parser.add_argument("--image", default=MODELSERVER_IMAGE)
    parser.add_argument("--steps", action="store_true", help="also print every step's seconds")
    args = parser.parse_args(argv)
    client = docker.from_env(timeout=120)
    resources = Resources(client)
    rows: list[Row] = []
    try:
        for case in CASES:
            if args.only and case.fault not in args.only:
                continue
            print(f"[bench-scenarios] {case.runbook} ({case.fault}) ...", flush=True)
            rows.append(run_case(case, resources, args.image))
    finally:
        remove_labelled(client)
        with contextlib.suppress(docker.errors.ImageNotFound, docker.errors.APIError):
            client.images.remove(WITHOUT_PILLOW, force=True)
    print()
    print(table(rows))
    if args.steps:
        for row in rows:
            print(f"{row.case.fault}: {row.steps}")
    return 0 if all(row.outcome == "success" for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
