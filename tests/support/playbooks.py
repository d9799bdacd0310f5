"""A test playbook and container shared by the tests that interrupt a run between two
mutating steps (a crash, a pause, a replica's death)."""

from __future__ import annotations

__all__ = ["SLEEPER", "TWO_FIXES"]

SLEEPER = ["python", "-c", "import time\nprint('up', flush=True)\ntime.sleep(3600)"]
"""A container that stays up and says so."""

TWO_FIXES = """
name: two-fixes
match: {alertname: ModelLoadFailure}
steps:
  - id: look
    phase: diagnose
    action: docker.inspect
  - id: restart
    phase: fix
    action: docker.restart
    with: {stop_timeout: 1s}
  - id: settle
    phase: fix
    action: wait
    with: {duration: 4s}
  - id: raise_memory
    phase: fix
    action: docker.update
    with: {memory: 384m, memory_swap: 384m}
"""
"""Two mutating fixes with a 4 s wait between them: the moment a test interrupts the run."""
