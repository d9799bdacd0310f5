"""Without PostgreSQL, the tests that need it skip on a laptop but fail under CI=true."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROBE = "tests/contract/test_store_contract.py::test_counts[postgres]"


def run_probe(ci: bool) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["REMEDIATOR_TEST_PG_BIN"] = "/nonexistent/postgresql/15/bin"
    if ci:
        env["CI"] = "true"
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "-rs", PROBE], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)


def test_ci_fails_without_postgresql() -> None:
    result = run_probe(ci=True)
    assert result.returncode != 0, result.stdout
    assert "PostgreSQL is required under CI=true" in result.stdout
    assert "make host" in result.stdout


def test_laptop_skips_with_a_reason() -> None:
    result = run_probe(ci=False)
    assert result.returncode == 0, result.stdout
    assert "1 skipped" in result.stdout and "no PostgreSQL" in result.stdout
