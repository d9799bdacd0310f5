"""The runbook's scripts run from the host: outside the virtualenv they say how, in one line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ["convert_model.py", "download_models.py"]
NO_TORCH = ("import runpy, sys; sys.modules['torch'] = None; sys.argv = sys.argv[1:]; "
            "runpy.run_path(sys.argv[0], run_name='__main__')")


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin"})


def assert_says_how_to_run(done: subprocess.CompletedProcess[str], script: str) -> None:
    assert done.returncode != 0, done
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert f".venv/bin/python scripts/{script}" in lines[0], lines[0]
    assert f"docker exec app-prod python /app/scripts/{script}" in lines[0], lines[0]


@pytest.mark.parametrize("script", SCRIPTS)
def test_a_bare_python_gets_one_line_saying_how_to_run_it(script: str) -> None:
    # -I -S: no site-packages at all, as python3 on a fresh host (no torch, no yaml).
    done = run(sys.executable, "-I", "-S", f"scripts/{script}", "--help")
    assert_says_how_to_run(done, script)
    assert "cannot import" in done.stderr


def test_convert_without_torch_says_how_to_run_it() -> None:
    done = run(sys.executable, "-c", NO_TORCH, "scripts/convert_model.py", "--help")
    assert_says_how_to_run(done, "convert_model.py")
    assert "cannot import torch" in done.stderr


def test_download_needs_no_torch() -> None:
    # It repairs a broken image (one whose torch is gone), so it must not need torch itself.
    done = run(sys.executable, "-c", NO_TORCH, "scripts/download_models.py", "--help")
    assert done.returncode == 0, done.stderr
    assert "--model" in done.stdout


@pytest.mark.parametrize("script", SCRIPTS)
def test_the_virtualenv_runs_them(script: str) -> None:
    done = run(sys.executable, f"scripts/{script}", "--help")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"usage: {script}")
