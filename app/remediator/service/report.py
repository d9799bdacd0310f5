"""`remediator report ID`: a Markdown incident report from the store.

Timeline, diagnosis, actions with their outputs, validation, outcome, and the changes a
human must make permanent (a raised memory limit, a recreated container, a file rewritten
or a command run inside the container live only in the running engine until someone
writes them into the image or docker-compose.yml). Captured output is
redacted of secret-looking values before it is printed.

Labels, annotations, outputs and names come from outside (an alert, a container, a
claimant) and stay data: an inline value is flattened to one line with Markdown and HTML
punctuation escaped, so it cannot start a section, a table cell or a comment; an output
sits in a fence longer than any backtick run inside it, so it cannot close the fence.
"""

from __future__ import annotations

import re
from typing import Any

from remediator.core import defaults
from remediator.core.redact import redact

__all__ = ["permanent_changes", "render_report"]

# CommonMark lets a backslash escape any ASCII punctuation; these are the ones that can
# start emphasis, code, links, HTML (comments included), table cells or headings.
_SPECIAL = re.compile(r"([\\`*\[\]<>&|#!~])")
# An underscore between letters or digits (file_missing, best_model) cannot emphasize.
_INTRAWORD = re.compile(r"(?<=[^\W_])_+(?=[^\W_])|(_+)")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_BACKTICKS = re.compile(r"`+")


def _inline(value: Any) -> str:
    """A value for running text: one line, Markdown and HTML punctuation escaped."""
    text = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", " ".join(str(value).splitlines()))
    text = _SPECIAL.sub(r"\\\1", text)
    return _INTRAWORD.sub(lambda m: "\\_" * len(m.group(1)) if m.group(1) else m.group(), text)


def _code(value: Any) -> str:
    """A value as an inline code span, delimited by more backticks than it contains."""
    text = " ".join(str(value).splitlines())
    ticks = "`" * (_longest_backticks(text) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


def _fenced(text: str) -> list[str]:
    """`text` as a code block whose fence no line of it can close."""
    fence = "`" * max(3, _longest_backticks(text) + 1)
    return [fence, text, fence]


def _longest_backticks(text: str) -> int:
    return max((len(run) for run in _BACKTICKS.findall(text)), default=0)


def _output(step: dict[str, Any]) -> str:
    outputs = step.get("outputs")
    output = outputs.get("output") if isinstance(outputs, dict) else None
    text = str(output or step.get("error") or step.get("note") or "")
    lines = redact(text).strip().splitlines()
    if len(lines) > defaults.REPORT_OUTPUT_LINES:
        shown = defaults.REPORT_OUTPUT_LINES
        lines = [*lines[:shown], f"... ({len(lines) - shown} more lines)"]
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
            changes.append(f"{_code(target)} limits were changed live ({_inline(parts)}): "
                           "write them into docker-compose.yml (`mem_limit`, "
                           "`memswap_limit`, `cpus`) or the next deploy undoes the fix.")
        elif step["action"] == "docker.recreate":
            changes.append(f"{_code(target)} was recreated with {_inline(redact(str(args)))}: "
                           "make the same change in docker-compose.yml.")
        elif step["action"] == "docker.copy":
            changes.append(f"{_code(args.get('dest'))} was restored from "
                           f"{_code(args.get('src'))}: find out why the original went "
                           "missing or bad.")
        elif step["action"] == "docker.put_file":
            changes.append(f"{_code(args.get('path'))} was rewritten in the running "
                           f"{_code(target)}: unless it is on a volume, a recreate "
                           "(docker-compose up) loses it; put the same file in the image or "
                           "mount it.")
        elif step["action"] == "docker.exec" and step["phase"] == "fix":
            changes.append(f"{_code(_command(args.get('cmd')))} ran in {_code(target)} (step "
                           f"{_inline(step['id'])}): what it changed outside the container's "
                           "volumes is lost on a recreate; make it part of the image or "
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
        cells = [_inline(step.get(key)) for key in ("id", "phase", "action", "status")]
        rows.append(f"| {' | '.join(cells)} | {duration} |")
    return rows


def _details(execution: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    for step in execution["steps"]:
        if step["status"] in ("skipped",):
            continue
        text = _output(step)
        lines.append(f"**{_inline(step['id'])}** ({_inline(step['action'])}, "
                     f"{_inline(step['status'])})")
        if text:
            lines += _fenced(text)
    return lines


def render_report(incident: dict[str, Any], executions: list[dict[str, Any]]) -> str:
    """The incident's Markdown report; always valid UTF-8 text (a lone surrogate kept in
    the store from before payloads were checked for them is shown as '?')."""
    labels = incident["labels"]
    out = [f"# Incident {incident['id']}: {_inline(labels.get('alertname'))} on "
           f"{_inline(labels.get('service', '?'))} ({_inline(labels.get('instance', '?'))})",
           "",
           f"- Status: **{_inline(incident['status'])}**; started "
           f"{_inline(incident['startsAt'])}; resolved {_inline(incident['resolved_at'] or '-')}",
           f"- Target: {_inline(incident['target'] or 'none (not acted on)')}"]
    if incident.get("note"):
        out.append(f"- Note: {_inline(incident['note'])}")
    if incident.get("claimed_by"):
        out.append(f"- Claimed by {_inline(incident['claimed_by'])} at "
                   f"{_inline(incident['claimed_at'])}")
    summary = incident["annotations"].get("summary")
    if summary:
        out.append(f"- Summary: {_inline(redact(summary))}")
    for ex in sorted(executions, key=lambda e: e["id"]):
        out += _execution(ex)
    text = "\n".join(out) + "\n"
    return text.encode("utf-8", "replace").decode("utf-8")


def _execution(ex: dict[str, Any]) -> list[str]:
    error = f" ({_inline(ex['error'])})" if ex.get("error") else ""
    out = ["", f"## Execution {ex['id']}: {_inline(ex['playbook'])}"
           + (" (dry run)" if ex["dry_run"] else ""), "",
           f"- Timeline: queued {_inline(ex['created_at'])}, started "
           f"{_inline(ex['started_at'] or '-')}, finished {_inline(ex['finished_at'] or '-')}",
           f"- Diagnosis: scenario **{_inline(ex['scenario'] or 'unknown')}**",
           f"- Outcome: **{_inline(ex['outcome'] or ex['state'])}**{error}"]
    for esc in ex["escalations"]:
        out.append(f"- Escalated to {_inline(esc['team'])} ({_inline(esc['level'])}): "
                   f"{_inline(redact(esc['reason']))}")
    out += ["", *_step_rows(ex), "", "### Actions and outputs", "", *_details(ex)]
    changes = permanent_changes(ex)
    if changes:
        out += ["", "### Make permanent", "", *[f"- {c}" for c in changes]]
    return out
