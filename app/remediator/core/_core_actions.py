"""The actions the core runs itself: diagnose.classify, wait, assert, notify.

They need no adapter, so dry runs and unit tests exercise them for real. `notify` only
returns its request; the runner turns it into an EscalationRequest on the execution.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from remediator.core.classify import classify
from remediator.core.templates import evaluate
from remediator.core.units import format_duration
from remediator.errors import ActionFailed, ActionTimeout

__all__ = ["run_core_action"]


def run_core_action(
    action: str, args: Mapping[str, Any], context: Mapping[str, Any], timeout: float,
    sleep: Callable[[float], None],
) -> dict[str, Any]:
    """Outputs of a core action; ActionFailed / ActionTimeout / TemplateError on failure."""
    if action == "diagnose.classify":
        return classify(args)
    if action == "wait":
        return _wait(float(args["duration"]), timeout, sleep)
    if action == "assert":
        return _assert(args, context)
    if action == "notify":
        request = {key: args[key] for key in ("team", "level", "reason")}
        return {**request, "output": f"escalation to {args['team']} ({args['level']})"}
    raise ActionFailed(f"{action} is not a core action")


def _wait(duration: float, timeout: float, sleep: Callable[[float], None]) -> dict[str, Any]:
    if duration > timeout:
        sleep(timeout)
        raise ActionTimeout(f"wait of {format_duration(duration)} is longer than the step "
                            f"timeout {format_duration(timeout)}")
    sleep(duration)
    return {"waited_s": duration, "output": f"waited {format_duration(duration)}"}


def _assert(args: Mapping[str, Any], context: Mapping[str, Any]) -> dict[str, Any]:
    value = bool(evaluate(args["that"], context))
    if not value:
        raise ActionFailed(str(args.get("message") or f"assertion failed: {args['that']}"))
    return {"value": True, "output": f"holds: {args['that']}"}
