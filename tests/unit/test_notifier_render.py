"""Message text from Jinja2 templates: defaults, user overrides, sandbox, redaction."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from remediator.adapters.notifiers import render_message
from remediator.core.escalation_eval import dedup_key
from remediator.errors import TemplateError


def context(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "team": "ml-team-lead", "level": "notify", "severity": "error",
        "rule": "ml-load-fails-after-file-restored",
        "reason": "Model loading still fails after the model file was restored",
        "incident": {
            "id": "inc-42", "target": "app-prod", "status": "firing",
            "starts_at": datetime(2025, 1, 15, 12, 0, tzinfo=UTC),
            "labels": {"alertname": "ModelLoadFailure", "service": "app-prod",
                       "severity": "critical"},
            "annotations": {"summary": "Model failed to load",
                            "runbook_url": "https://runbooks.example.com/model-load-failure"},
            "generator_url": "http://127.0.0.1:9090/graph?g0.expr=model_loaded",
        },
        "diagnosis": {"scenario": "file_missing_or_corrupted",
                      "summary": "FileNotFoundError: /app/models/best_model.pth",
                      "evidence": "FileNotFoundError: [Errno 2] /app/models/best_model.pth"},
        "steps": [
            {"id": "logs", "action": "docker.logs", "outcome": "succeeded"},
            {"id": "restore", "action": "docker.exec", "outcome": "succeeded",
             "detail": "copied /backup/models/best_model.pth"},
            {"id": "validate", "action": "http.check", "outcome": "failed",
             "detail": "/health answered model_loaded=false"},
        ],
        "links": {"execution": "http://127.0.0.1:9096/executions/9"},
    }
    base.update(changes)
    return base


def test_trigger_has_summary_diagnosis_steps_and_links() -> None:
    message = render_message(None, "trigger", context())
    assert message.title == "ModelLoadFailure on app-prod: Model failed to load"
    for expected in (
        "Why: Model loading still fails after the model file was restored",
        "Incident inc-42: ModelLoadFailure on app-prod, firing since 2025-01-15T12:00:00+00:00",
        "Diagnosis: file_missing_or_corrupted — FileNotFoundError",
        "  - restore (docker.exec): succeeded — copied /backup/models/best_model.pth",
        "  - validate (http.check): failed — /health answered model_loaded=false",
        "  execution: http://127.0.0.1:9096/executions/9",
        "  runbook: https://runbooks.example.com/model-load-failure",
        "  alert: http://127.0.0.1:9090/graph?g0.expr=model_loaded",
    ):
        assert expected in message.text
    assert message.links == {
        "execution": "http://127.0.0.1:9096/executions/9",
        "runbook": "https://runbooks.example.com/model-load-failure",
        "alert": "http://127.0.0.1:9090/graph?g0.expr=model_loaded",
    }
    assert (message.kind, message.team, message.level, message.severity) == (
        "trigger", "ml-team-lead", "notify", "error")
    assert message.incident_id == "inc-42"
    assert message.dedup_key == dedup_key("inc-42", "ml-team-lead", "notify")
    assert message.fields["Target"] == "app-prod"
    assert message.source == "app-prod"


def test_page_title_and_resolve_title() -> None:
    page = render_message(None, "trigger", context(level="page"))
    assert page.title.startswith("[PAGE] ")
    resolved = render_message(None, "resolve", context())
    assert resolved.title.startswith("[RESOLVED] ")
    assert "is healthy again (incident inc-42)" in resolved.text


def test_test_message_needs_no_incident() -> None:
    message = render_message(None, "test", {"team": "emergency", "level": "notify"})
    assert message.title == "[TEST] Remediator test notification for emergency"
    assert "no action is needed" in message.text


def test_labels_are_values_never_template_source() -> None:
    incident = context()["incident"]
    incident["annotations"]["summary"] = "{{ 7 * 7 }} {% raw %}"
    message = render_message(None, "trigger", context(incident=incident))
    assert "{{ 7 * 7 }} {% raw %}" in message.title
    assert "49" not in message.title


def test_container_output_is_redacted() -> None:
    diagnosis = {"scenario": "configuration", "summary": "bad env",
                 "evidence": "MODEL=int2\nSMTP_PASSWORD=hunter2\nAuthorization: Bearer abc.def"}
    message = render_message(None, "trigger", context(diagnosis=diagnosis))
    assert "hunter2" not in message.text and "abc.def" not in message.text
    assert "SMTP_PASSWORD=***" in message.text
    assert "hunter2" not in message.html


def test_html_part_is_escaped_and_text_is_not() -> None:
    incident = context()["incident"]
    incident["annotations"]["summary"] = "<script>alert(1)</script> & more"
    message = render_message(None, "trigger", context(incident=incident))
    assert "<script>" not in message.html
    assert "&lt;script&gt;" in message.html
    assert "<script>alert(1)</script> & more" in message.title


def test_only_web_links_survive() -> None:
    message = render_message(None, "trigger", context(links={
        "execution": "http://127.0.0.1:9096/executions/9", "evil": "javascript:alert(1)"}))
    assert "evil" not in message.links
    assert "javascript:" not in message.html


def test_user_template_overrides_the_default(tmp_path: Path) -> None:
    (tmp_path / "trigger.txt.j2").write_text(
        "{{ team }}: {{ incident.alertname }} [{{ diagnosis.scenario }}]\n")
    message = render_message(tmp_path, "trigger", context())
    assert message.text == "ml-team-lead: ModelLoadFailure [file_missing_or_corrupted]\n"
    assert message.title == "ModelLoadFailure on app-prod: Model failed to load"  # default


@pytest.mark.parametrize("source", [
    "{{ incident.no_such_key }}",                       # a typo (strict undefined)
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",   # a sandbox escape attempt
    "{% for %}",                                         # a syntax error
])
def test_broken_user_template_falls_back_to_the_default(tmp_path: Path, source: str) -> None:
    (tmp_path / "trigger.txt.j2").write_text(source)
    message = render_message(tmp_path, "trigger", context())
    assert "Diagnosis: file_missing_or_corrupted" in message.text
    assert "trigger.txt.j2" in message.fields["template_error"]


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(TemplateError, match="unknown message kind 'page'"):
        render_message(None, "page", context())
