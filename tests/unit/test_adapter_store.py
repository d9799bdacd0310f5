"""The store keeps a step's outputs within MAX_OUTPUT_CHARS without changing their shape:
a run resumed after a crash decides on them, and the report shows their `output`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from remediator.core.alerts import parse_alert
from remediator.core.playbook import load_playbook_text
from remediator.core.results import StepResult
from remediator.core.runner import run_playbook
from remediator.core.targets import Target
from remediator.store.records import StepRecord
from remediator.store.sqlite import MAX_OUTPUT_CHARS, capped
from remediator.store.sqlite import SqliteStore as Store
from tests.support.fakes import FakeRuntime

TARGET = Target(name="app-prod", selector={"service": "app-prod"}, container="app-prod",
                base_url="http://app-prod:8080")
ALERT = parse_alert({"status": "firing", "startsAt": "2026-11-29T11:27:02Z",
                     "labels": {"alertname": "ModelLoadFailure", "service": "app-prod"},
                     "fingerprint": "0023b7e32bfe951f"})
LINE = ("ERROR model load failed: PermissionError: [Errno 13] Permission denied: "
        "'/app/models/best_model.pth' " + "x" * 100)
LOGS = {"output": "\n".join([LINE] * 400), "lines": 400, "total_lines": 400}
PLAYBOOK = load_playbook_text("""
name: t
match: {alertname: ModelLoadFailure}
steps:
  - {id: logs, phase: diagnose, action: docker.logs, with: {tail: 400}}
  - id: classify
    phase: diagnose
    action: diagnose.classify
    with:
      text: "{{ steps.logs.output }}"
      default: unknown
      rules: [{pattern: "PermissionError", scenario: permission_denied}]
""")


def test_over_long_outputs_keep_their_keys_and_a_readable_output() -> None:
    text = capped(LOGS)
    stored = json.loads(text)
    assert len(text) <= MAX_OUTPUT_CHARS
    assert set(stored) == {"output", "lines", "total_lines", "_truncated"}
    assert stored["_truncated"] == ["output"] and stored["lines"] == 400
    assert stored["output"].startswith(LINE + "\n")  # what the report's first lines show
    assert stored["output"].endswith("\n" + LINE)
    assert "characters cut by the store" in stored["output"]


def test_the_cut_markers_count_what_was_really_cut() -> None:
    # Four long fields need a second pass: its markers must count from the original text.
    outputs = {f"f{i}": str(i) * 30_000 for i in range(4)}
    stored = json.loads(capped(outputs))
    assert len(json.dumps(stored)) <= MAX_OUTPUT_CHARS
    for i in range(4):
        value = stored[f"f{i}"]
        head, _, rest = value.partition("\n... [")
        count = int(rest.split(" characters cut")[0])
        kept = len(head) + len(rest.split("] ...\n", 1)[1])
        assert kept + count == 30_000, (kept, count)


def test_a_field_named_truncated_inside_the_outputs_is_data_and_kept() -> None:
    body = {"_truncated": False, "n": 1}
    stored = json.loads(capped({"output": "x" * (MAX_OUTPUT_CHARS + 10), "body": body}))
    assert stored["body"] == body and stored["_truncated"] == ["output"]


def test_outputs_within_the_cap_are_stored_as_they_are() -> None:
    assert json.loads(capped({"output": "ok", "body": {"a": [1, 2]}})) == {
        "output": "ok", "body": {"a": [1, 2]}}


def test_a_run_resumed_after_long_logs_were_stored_reaches_the_same_scenario(
        tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    execution_id = store.add_execution(None, "t", "app-prod", None, False)
    full = run_playbook(PLAYBOOK, ALERT, TARGET, FakeRuntime(docker__logs=LOGS))
    store.record_step(execution_id, 0,  # then the process died
                      StepRecord.from_dict(full.steps[0].to_dict()))

    resume = [StepResult.from_dict(step.view()) for step in store.steps(execution_id)]
    runtime = FakeRuntime()
    resumed = run_playbook(PLAYBOOK, ALERT, TARGET, runtime, resume_from=resume)
    assert runtime.calls == []  # logs adopted, not fetched again
    assert full.scenario == resumed.scenario == "permission_denied"


def test_the_store_and_its_wal_are_owner_only_from_their_creation(tmp_path: Path) -> None:
    import os
    import stat

    old = os.umask(0o022)  # the usual umask: files would be 0644
    try:
        store = Store(tmp_path / "state" / "remediator.db")
        store.record_last_known_good("t", "sha256:x", {"env": []})
    finally:
        os.umask(old)
    files = [p for p in (tmp_path / "state").iterdir() if p.name.startswith("remediator.db")]
    assert {p.name for p in files} >= {"remediator.db", "remediator.db-wal"}
    assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in files} == {
        p.name: 0o600 for p in files}


def test_private_files_are_never_written_through_a_planted_link(tmp_path: Path) -> None:
    import stat

    from remediator.adapters.private_files import write_private

    victim = tmp_path / "victim"
    victim.write_text("keep")
    (tmp_path / "webhook-token").symlink_to(victim)
    with pytest.raises(OSError):
        write_private(tmp_path / "webhook-token", "t0k3n")
    assert victim.read_text() == "keep"
    write_private(tmp_path / "token2", "t0k3n")
    assert stat.S_IMODE((tmp_path / "token2").stat().st_mode) == 0o600
