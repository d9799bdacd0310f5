"""Template safety: labels are data, never template source or shell; the sandbox holds."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from remediator.core.templates import (
    evaluate,
    inspect_expression,
    inspect_template,
    render,
    render_text,
)
from remediator.errors import TemplateError

HOSTILE = "$(touch /tmp/x); rm -rf /"


def context(**labels: str) -> dict[str, Any]:
    return {"alert": {"labels": labels, "annotations": {}}, "params": {"n": 3},
            "target": {"name": "app-prod"},
            "steps": {"logs": {"output": "line", "lines": 2, "status": "ok"}}}


def test_a_label_that_looks_like_a_template_stays_literal() -> None:
    ctx = context(summary="{{ 7*7 }}")
    assert render("{{ alert.labels.summary }}", ctx) == "{{ 7*7 }}"
    assert render("said: {{ alert.labels.summary }}", ctx) == "said: {{ 7*7 }}"


def test_a_shell_looking_label_stays_one_argv_element() -> None:
    argv = render(["echo", "{{ alert.labels.evil }}"], context(evil=HOSTILE))
    assert argv == ["echo", HOSTILE]


def test_a_shell_looking_label_creates_nothing_when_the_argv_runs(tmp_path: Path) -> None:
    marker = tmp_path / "x"
    evil = f"$(touch {marker}); touch {marker}; `touch {marker}`"
    argv = render([sys.executable, "-c", "import sys; print(sys.argv[1])",
                   "{{ alert.labels.evil }}"], context(evil=evil))
    done = subprocess.run(argv, capture_output=True, text=True, check=True, cwd=tmp_path)
    assert done.stdout.strip() == evil
    assert not marker.exists()


@pytest.mark.parametrize("source", [
    "{{ ''.__class__.__mro__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ alert.__class__ }}",
    "{{ render.__globals__ }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ steps.logs.output.__len__() }}",
    "{% set x = alert.labels.update({'a': 'b'}) %}",
    "{{ alert.labels.pop('service') }}",
])
def test_sandbox_escapes_in_a_playbook_raise_template_error(source: str) -> None:
    with pytest.raises(TemplateError):
        render(source, context(service="app-prod"))


def test_undefined_names_and_typos_raise_instead_of_rendering_empty() -> None:
    with pytest.raises(TemplateError, match="lables"):
        render("{{ alert.lables.service }}", context(service="x"))
    with pytest.raises(TemplateError, match="undefined"):
        render("{{ alert.labels.missing }}", context(service="x"))
    with pytest.raises(TemplateError):
        evaluate("steps.nope.output == 'x'", context())


def test_syntax_errors_and_runtime_errors_are_template_errors() -> None:
    with pytest.raises(TemplateError, match="syntax"):
        render_text("{{ oops", context())
    with pytest.raises(TemplateError, match="ZeroDivisionError"):
        render_text("n={{ 1 / 0 }}", context())
    with pytest.raises(TemplateError, match="No filter named"):
        inspect_template("{{ x | nosuchfilter }}")


def test_a_single_expression_keeps_its_type() -> None:
    ctx = context()
    assert render("{{ params.n }}", ctx) == 3
    assert render("{{ steps.logs.lines > 1 }}", ctx) is True
    assert render("n={{ params.n }}", ctx) == "n=3"
    assert render({"k": ["{{ params.n }}", "x"]}, ctx) == {"k": [3, "x"]}
    assert render(5, ctx) == 5


def test_a_rendered_value_is_never_parsed_again() -> None:
    ctx = context(payload="[1, 2]", number="42")
    assert render("{{ alert.labels.payload }}", ctx) == "[1, 2]"
    assert render("{{ alert.labels.number }}", ctx) == "42"


def test_expressions_evaluate_against_earlier_outputs() -> None:
    assert evaluate("steps.logs.status == 'ok' and params.n >= 3", context()) is True
    assert evaluate("'line' in steps.logs.output", context()) is True


def test_inspection_reports_what_a_template_reads() -> None:
    info = inspect_template("{{ steps['logs'].output | lower }} {{ alert.labels.service }}")
    assert ("steps", "logs", "output") in info.chains
    assert ("alert", "labels", "service") in info.chains
    assert info.variables == {"steps", "alert"}
    expression = inspect_expression("''.__class__ == steps.x.scenario")
    assert expression.private == ("__class__",)
    with pytest.raises(TemplateError, match="without"):
        inspect_expression("{{ steps.x.status }} == 'ok'")
