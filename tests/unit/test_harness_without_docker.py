"""Without a Docker engine, docker tests skip on a laptop but fail under CI=true."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROBE = "tests/integration/test_harness.py::test_ports_are_published_on_loopback_only"


def run_probe(ci: bool) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env.update(DOCKER_HOST="unix:///nonexistent/docker.sock", DOCKERD="false",
               DOCKERD_LOG=os.devnull)
    if ci:
        env["CI"] = "true"
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "-rs", PROBE], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)


def test_ci_fails_when_the_engine_is_unreachable_and_dockerd_cannot_start() -> None:
    result = run_probe(ci=True)
    assert result.returncode != 0, result.stdout
    assert "Docker is required under CI=true" in result.stdout
    assert "dockerd did not come up" in result.stdout or "not root" in result.stdout


def test_laptop_skips_with_a_reason() -> None:
    result = run_probe(ci=False)
    assert result.returncode == 0, result.stdout
    assert "1 skipped" in result.stdout and "Docker unavailable" in result.stdout
