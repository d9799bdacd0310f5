"""Fault: a target whose `docker exec` never returns.

The exec is cut off at the step's timeout (its process killed in the container), and the
worker is not held by it: another target's execution runs and finishes meanwhile.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.reliability.conftest import (
    ServeFactory,
    SleeperFactory,
    alert,
    config_yaml,
    target_yaml,
    wait_for,
    webhook,
)

pytestmark = pytest.mark.docker

HANG_S = 20
"""Long enough that the other target's intake, dispatch, inspect and exec finish first on a
busy 2-core engine (6 s was tight there)."""

HANGS = f"""
name: hangs
match: {{alertname: ModelLoadTime}}
steps:
  - id: stuck
    phase: diagnose
    action: docker.exec
    read_only: true
    timeout: {HANG_S}s
    with: {{cmd: [sleep, "3600"]}}
"""

QUICK = """
name: quick
match: {alertname: ModelMemoryUsage}
steps:
  - id: look
    phase: diagnose
    action: docker.inspect
  - id: echo
    phase: diagnose
    action: docker.exec
    read_only: true
    with: {cmd: [echo, ok]}
"""


def test_hung_exec_is_cut_off_at_its_timeout_while_another_target_is_fixed(
        serve: ServeFactory, sleeper: SleeperFactory) -> None:
    slow, fast = sleeper(), sleeper()
    rem = serve(config_yaml(target_yaml("slow", slow.name) + target_yaml("fast", fast.name),
                            concurrency=2),
                {"hangs.yml": HANGS, "quick.yml": QUICK})

    def executions() -> dict[str, dict[str, Any]]:
        return {f"{e['target']}/{e['playbook']}": e for e in rem.items("executions")}

    assert rem.post(webhook(alert("ModelLoadTime", service="slow"))).status_code == 202
    wait_for(lambda: any(s["status"] == "running" for s in
                         executions().get("slow/hangs", {}).get("steps", [])),
             30, "the exec on the slow target to hang")

    assert rem.post(webhook(alert("ModelMemoryUsage", service="fast"))).status_code == 202
    quick = wait_for(lambda: (e := executions().get("fast/quick")) and e["state"] == "finished"
                     and e, 30, "the other target's execution")
    assert quick["outcome"] == "success", quick
    # ... finished while the hung one was still running: the worker was not held.
    assert executions()["slow/hangs"]["state"] == "running"

    hung = wait_for(lambda: (e := executions()["slow/hangs"])["state"] == "finished" and e,
                    HANG_S + 30, "the hung execution to be cut off")
    (step,) = hung["steps"]
    assert step["status"] == "timeout", step
    assert f"still running after {HANG_S}s; killed" in step["error"]
    assert HANG_S <= step["duration_s"] < HANG_S + 5  # cut off at its timeout, not later
    assert hung["outcome"] == "failed"
    # The command itself was killed inside the container, not just abandoned.
    assert not [p for p in slow.top()["Processes"] if "3600" in " ".join(p)]

    # The thread that ran it is free again: the slow target takes new work at once.
    assert rem.post(webhook(alert("ModelMemoryUsage", service="slow"))).status_code == 202
    after = wait_for(lambda: (e := executions().get("slow/quick")) and e["state"] == "finished"
                     and e, 30, "an execution on the formerly hung target")
    assert after["outcome"] == "success", after
