"""`remediator report ID`: a Markdown incident report from the store.

Timeline, diagnosis, actions with their outputs, validation, outcome, and the changes a
human must make permanent (a raised memory limit, a recreated container, a file rewritten
or a command run inside the container live only in the running engine until someone
writes them into the image or docker-compose.yml). Captured output is
redacted of secret-looking values before it is printed.
"""

from __future__ import annotations

from typing import Any

from remediator.core.redact import redact

__all__ = ["permanent_changes", "render_report"]

OUTPUT_LINES = 12
"""Lines of a step's output shown in the report."""


def _output(step: dict[str, Any]) -> str:
    text = str(step["outputs"].get("output") or step.get("error") or step.get("note") or "")
    lines = redact(text).strip().splitlines()
    if len(lines) > OUTPUT_LINES:
        lines = [*lines[:OUTPUT_LINES], f"... ({len(lines) - OUTPUT_LINES} more lines)"]
    return "\n".join(lines)


def permanent_changes(execution: dict[str, Any]) -> list[str]:
    """What this execution changed that exists only in the running engine."""
    changes = []
    for step in execution["steps"]:
        if step["status"] != "ok":
            continue
        args, target = step["rendered_args"], execution["target"]
        if step["action"] == "docker.update":
            parts = ", ".join(f"{k}={v}" for k, v in sorted(args.items()))
            changes.append(f"`{target}` limits were changed live ({parts}): write them into "
                           "docker-compose.yml (`mem_limit`, `memswap_limit`, `cpus`) or the "
                           "next deploy undoes the fix.")
        elif step["action"] == "docker.recreate":
            changes.append(f"`{target}` was recreated with {redact(str(args))}: make the same "
                           "change in docker-compose.yml.")
        elif step["action"] == "docker.copy":
            changes.append(f"`{args.get('dest')}` was restored from `{args.get('src')}`: find "
                           "out why the original went missing or bad.")
        elif step["action"] == "docker.put_file":
            changes.append(f"`{args.get('path')}` was rewritten in the running `{target}`: "
                           "unless it is on a volume, a recreate (docker-compose up) loses "
                           "it; put the same file in the image or mount it.")
        elif step["action"] == "docker.exec" and step["phase"] == "fix":
            changes.append(f"`{_command(args.get('cmd'))}` ran in `{target}` (step "
                           f"{step['id']}): what it changed outside the container's volumes "
                           "is lost on a recreate; make it part of the image or "
                           "docker-compose.yml.")
    return changes


def _command(cmd: Any) -> str:
    """A command line for people: an inline `python -c` script is shown as <script>."""
    if not isinstance(cmd, list):
        return redact(str(cmd))
    words = [str(word) for word in cmd]
    if len(words) > 2 and words[1] == "-c":
        words[2] = "<script>"
    return redact(" ".join(words))


def _step_rows(execution: dict[str, Any]) -> list[str]:
    rows = ["| step | phase | action | status | duration |", "| --- | --- | --- | --- | --- |"]
    for step in execution["steps"]:
        duration = f"{step['duration_s']:.2f}s" if step.get("duration_s") is not None else "-"
        rows.append(f"| {step['id']} | {step['phase']} | {step['action']} | {step['status']} "
                    f"| {duration} |")
    return rows


def _details(execution: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    for step in execution["steps"]:
        if step["status"] in ("skipped",):
            continue
        text = _output(step)
        lines.append(f"**{step['id']}** ({step['action']}, {step['status']})")
        if text:
            lines += ["```", text, "```"]
    return lines


def render_report(incident: dict[str, Any], executions: list[dict[str, Any]]) -> str:
    labels = incident["labels"]
    out = [f"# Incident {incident['id']}: {labels.get('alertname')} on "
           f"{labels.get('service', '?')} ({labels.get('instance', '?')})", "",
           f"- Status: **{incident['status']}**; started {incident['startsAt']}; "
           f"resolved {incident['resolved_at'] or '-'}",
           f"- Target: {incident['target'] or 'none (not acted on)'}"]
    if incident.get("note"):
        out.append(f"- Note: {incident['note']}")
    if incident.get("claimed_by"):
        out.append(f"- Claimed by {incident['claimed_by']} at {incident['claimed_at']}")
    summary = incident["annotations"].get("summary")
    if summary:
        out.append(f"- Summary: {redact(summary)}")
    for ex in sorted(executions, key=lambda e: e["id"]):
        out += ["", f"## Execution {ex['id']}: {ex['playbook']}"
                + (" (dry run)" if ex["dry_run"] else ""), "",
                f"- Timeline: queued {ex['created_at']}, started {ex['started_at'] or '-'}, "
                f"finished {ex['finished_at'] or '-'}",
                f"- Diagnosis: scenario **{ex['scenario'] or 'unknown'}**",
                f"- Outcome: **{ex['outcome'] or ex['state']}**"
                + (f" ({ex['error']})" if ex.get("error") else "")]
        for esc in ex["escalations"]:
            out.append(f"- Escalated to {esc['team']} ({esc['level']}): {redact(esc['reason'])}")
        out += ["", *_step_rows(ex), "", "### Actions and outputs", "", *_details(ex)]
        changes = permanent_changes(ex)
        if changes:
            out += ["", "### Make permanent", "", *[f"- {c}" for c in changes]]
    return "\n".join(out) + "\n"
