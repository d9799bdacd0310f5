"""The incident report keeps outside text as data: labels, annotations and outputs cannot
forge a section, hide lines in a comment, break the table or close a code fence."""

from __future__ import annotations

from typing import Any

from remediator.service.report import render_report

FORGED_INSTANCE = ("app-prod:8080)\n\n## Execution 1: model-load-failure\n\n"
                   "- Outcome: **success**\n\n<!--")


def incident(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": 7, "status": "firing", "startsAt": "2026-11-29T11:27:02Z", "resolved_at": None,
        "target": "app-prod", "note": None, "claimed_by": None, "claimed_at": None,
        "labels": {"alertname": "ModelLoadFailure", "service": "app-prod",
                   "instance": "app-prod:8080"},
        "annotations": {"summary": "Model failed to load"},
    }
    base.update(changes)
    return base


def step(output: Any, **changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"id": "echo", "phase": "diagnose", "action": "docker.exec",
                            "status": "ok", "duration_s": 0.1, "outputs": {"output": output},
                            "rendered_args": {"cmd": ["echo", "hi"]}, "error": None,
                            "note": None}
    base.update(changes)
    return base


def execution(*steps: dict[str, Any], **changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": 1, "playbook": "model-load-failure", "dry_run": False, "target": "app-prod",
        "created_at": "2026-11-29T11:27:03Z", "started_at": "2026-11-29T11:27:03Z",
        "finished_at": "2026-11-29T11:27:09Z", "scenario": "file_missing_or_corrupted",
        "outcome": "failed", "state": "finished", "error": None, "escalations": [],
        "steps": list(steps),
    }
    base.update(changes)
    return base


def headings(text: str) -> list[str]:
    """Lines a Markdown reader takes for headings (outside code blocks)."""
    found, fence = [], ""
    for line in text.splitlines():
        if fence:
            if line.strip() == fence:
                fence = ""
            continue
        if line.startswith("```"):
            fence = line.strip()
        elif line.startswith("#"):
            found.append(line)
    return found


def test_labels_and_annotations_cannot_forge_sections_or_hide_the_report() -> None:
    text = render_report(incident(
        labels={"alertname": "ModelLoadFailure", "service": "app-prod",
                "instance": FORGED_INSTANCE},
        annotations={"summary": "Model failed\n# Resolved by hand, ignore this page"},
    ), [execution(step("ok"))])
    assert headings(text) == [
        "# Incident 7: ModelLoadFailure on app-prod (app-prod:8080)  \\#\\# Execution 1: "
        "model-load-failure  - Outcome: \\*\\*success\\*\\*  \\<\\!--)",
        "## Execution 1: model-load-failure", "### Actions and outputs"]
    assert "<!--" not in text
    assert "- Summary: Model failed \\# Resolved by hand, ignore this page" in text.splitlines()


def test_pipes_and_backticks_in_values_stay_inside_their_table_cell() -> None:
    text = render_report(incident(), [execution(step("ok", id="a|b`c", status="ok"))])
    (row,) = [line for line in text.splitlines() if line.startswith("| a")]
    assert row == "| a\\|b\\`c | diagnose | docker.exec | ok | 0.10s |"


def test_an_output_with_a_fence_in_it_cannot_close_its_block() -> None:
    output = "ok```\n```\n# injected\n`````"
    text = render_report(incident(), [execution(step(output))]).splitlines()
    start = text.index("**echo** (docker.exec, ok)") + 1
    assert text[start:start + 6] == ["``````", "ok```", "```", "# injected", "`````", "``````"]
    assert "# injected" not in headings("\n".join(text))


def test_claimant_and_error_are_flattened_and_escaped() -> None:
    text = render_report(incident(claimed_by="eve\n## Fixed", claimed_at="now"),
                         [execution(step("ok"), error="boom\n<script>x</script>")])
    assert "- Claimed by eve \\#\\# Fixed at now" in text.splitlines()
    assert "- Outcome: **failed** (boom \\<script\\>x\\</script\\>)" in text.splitlines()


def test_commands_shown_as_code_keep_their_backticks_inside_the_span() -> None:
    fix = step("", phase="fix", rendered_args={"cmd": ["sh", "-x", "echo `id`"]})
    text = render_report(incident(), [execution(fix)])
    assert "- `` sh -x echo `id` `` ran in `app-prod` (step echo)" in text


def test_outputs_in_another_shape_are_read_defensively() -> None:
    shapes = [step("x" * 10, outputs={"truncated": True, "head": "{...}"}),
              step(None, outputs=None, error="it failed"),
              step(None, outputs={"output": {"not": "text"}}),
              step("cut short", outputs={"output": "cut short", "output_truncated": True})]
    text = render_report(incident(), [execution(*shapes)])
    assert "it failed" in text and "cut short" in text
