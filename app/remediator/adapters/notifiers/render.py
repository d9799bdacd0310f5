"""Render a notification from Jinja2 templates a user can override.

Templates are looked up first in the user's ``template_dir``, then in the defaults shipped
in ``remediator/templates/notify``: ``title.txt.j2`` (one line), ``<kind>.txt.j2`` (the
text) and ``message.html.j2`` (the e-mail's HTML part, autoescaped).

Safety: templates run in Jinja's sandbox; incident labels and container output are values
in the context, never template source; every string in the context is redacted of
secret-looking values first. A user template that fails to render is replaced by the
default one (the page must still go out) and the failure is noted in the message fields.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Final, cast
from urllib.parse import urlsplit

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from remediator.adapters.notifiers.base import Message, MessageKind
from remediator.core.escalation_eval import dedup_key
from remediator.core.redact import redact
from remediator.errors import TemplateError

__all__ = ["DEFAULT_TEMPLATE_DIR", "KINDS", "render_message"]

log = logging.getLogger(__name__)

DEFAULT_TEMPLATE_DIR: Final = Path(__file__).resolve().parents[2] / "templates" / "notify"
"""Where the shipped templates live; a user directory is searched before it."""

KINDS: Final = ("trigger", "resolve", "info", "test")
_TITLE_MAX: Final = 250
_SEVERITY_BY_LEVEL: Final = {"page": "critical", "notify": "warning"}


def render_message(
    template_dir: str | Path | None, kind: str, context: Mapping[str, Any]
) -> Message:
    """Build the Message for ``kind`` from ``context``.

    Context keys (all optional but team/level): ``team``, ``level``, ``severity``,
    ``reason``, ``rule``, ``dedup_key``, ``incident`` (id, alertname, target, service,
    status, starts_at, summary, description, labels, annotations, generator_url),
    ``diagnosis`` (scenario, summary, evidence), ``steps`` (id, action, outcome, detail),
    ``links`` (label → URL; ``execution``, ``runbook``, ``alert``), ``fields``.
    """
    if kind not in KINDS:
        raise TemplateError(f"unknown message kind {kind!r} (kinds: {', '.join(KINDS)})")
    values = _normalise(kind, context)
    title, text, html, problem = _render_all(template_dir, kind, values)
    fields = dict(values["fields"])
    if problem:
        fields["template_error"] = problem
    incident = values["incident"]
    return Message(
        kind=cast(MessageKind, kind), team=values["team"], level=values["level"],
        title=" ".join(title.split())[:_TITLE_MAX], text=text.strip() + "\n",
        incident_id=incident["id"], dedup_key=values["dedup_key"],
        severity=values["severity"], links=values["links"], fields=fields, html=html,
        source=incident["target"] or incident["service"] or "remediator",
    )


def _render_all(template_dir: str | Path | None, kind: str, values: dict[str, Any]
                ) -> tuple[str, str, str, str]:
    names = ("title.txt.j2", f"{kind}.txt.j2", "message.html.j2")
    try:
        title, text, html = (_render(_environment(template_dir), n, values) for n in names)
        return title, text, html, ""
    except TemplateError as exc:
        if template_dir is None:
            raise
        log.warning("notification template failed, using the default: %s", exc)
        title, text, html = (_render(_environment(None), n, values) for n in names)
        return title, text, html, str(exc)


@functools.lru_cache(maxsize=16)
def _environment(template_dir: str | Path | None) -> SandboxedEnvironment:
    # One environment per directory, kept: it caches compiled templates (and reloads a
    # file that changed), where a fresh one recompiled every template for every message,
    # tens of milliseconds each, which an alert storm's notifications paid under the GIL.
    loaders: list[jinja2.BaseLoader] = []
    if template_dir is not None:
        loaders.append(jinja2.FileSystemLoader(str(template_dir)))
    loaders.append(jinja2.FileSystemLoader(str(DEFAULT_TEMPLATE_DIR)))
    return SandboxedEnvironment(
        loader=jinja2.ChoiceLoader(loaders),
        undefined=jinja2.StrictUndefined,  # a typo in a template is an error, not a blank
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2", "html")),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _render(env: SandboxedEnvironment, name: str, values: Mapping[str, Any]) -> str:
    try:
        return env.get_template(name).render(values)
    except jinja2.TemplateError as exc:
        raise TemplateError(f"notification template {name}: {exc}") from None


# ------------------------------------------------------------------ context


def _normalise(kind: str, context: Mapping[str, Any]) -> dict[str, Any]:
    # Every documented key exists (templates can test it without StrictUndefined raising)
    # and every string is redacted.
    clean = cast(dict[str, Any], _redacted(dict(context)))
    team = str(clean.get("team") or "")
    level = str(clean.get("level") or "notify")
    incident = _incident(clean.get("incident"))
    return {
        "kind": kind,
        "team": team,
        "level": level,
        "severity": str(clean.get("severity") or _SEVERITY_BY_LEVEL.get(level, "warning")),
        "reason": str(clean.get("reason") or ""),
        "rule": str(clean.get("rule") or ""),
        "dedup_key": str(clean.get("dedup_key") or dedup_key(incident["id"], team, level)),
        "incident": incident,
        "diagnosis": _diagnosis(clean.get("diagnosis")),
        "steps": [_step(s) for s in _sequence(clean.get("steps"))],
        "links": _links(clean.get("links"), incident),
        "fields": _fields(clean.get("fields"), incident),
        "now": clean.get("now") or "",
    }


def _incident(value: object) -> dict[str, Any]:
    given = value if isinstance(value, Mapping) else {}
    keys = ("id", "alertname", "target", "service", "status", "starts_at", "summary",
            "description", "generator_url", "down_for")
    incident: dict[str, Any] = {key: _text(given.get(key)) for key in keys}
    incident["labels"] = _str_map(given.get("labels"))
    incident["annotations"] = _str_map(given.get("annotations"))
    annotations = incident["annotations"]
    incident["summary"] = incident["summary"] or annotations.get("summary", "")
    incident["description"] = incident["description"] or annotations.get("description", "")
    incident["alertname"] = incident["alertname"] or incident["labels"].get("alertname", "")
    incident["service"] = incident["service"] or incident["labels"].get("service", "")
    return incident


def _diagnosis(value: object) -> dict[str, str]:
    if isinstance(value, str):
        return {"scenario": "", "summary": value, "evidence": ""}
    given = value if isinstance(value, Mapping) else {}
    return {key: _text(given.get(key)) for key in ("scenario", "summary", "evidence")}


def _step(value: object) -> dict[str, str]:
    given = value if isinstance(value, Mapping) else {"id": value}
    return {key: _text(given.get(key)) for key in ("id", "action", "outcome", "detail")}


def _links(value: object, incident: Mapping[str, Any]) -> dict[str, str]:
    links = {k: v for k, v in _str_map(value).items() if _is_web_url(v)}
    runbook = incident["annotations"].get("runbook_url", "")
    if "runbook" not in links and _is_web_url(runbook):
        links["runbook"] = runbook
    if "alert" not in links and _is_web_url(incident["generator_url"]):
        links["alert"] = incident["generator_url"]
    return links


def _fields(value: object, incident: Mapping[str, Any]) -> dict[str, str]:
    fields = {"Target": incident["target"], "Alert": incident["alertname"],
              "Status": incident["status"], "Since": incident["starts_at"]}
    fields = {k: v for k, v in fields.items() if v}
    fields.update(_str_map(value))
    return fields


def _is_web_url(url: str) -> bool:
    # Only http(s): a javascript: or data: link from a label must not reach an HTML part.
    return urlsplit(url).scheme in ("http", "https") if url else False


def _redacted(value: object) -> object:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {str(k): _redacted(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_redacted(v) for v in value]
    return value


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _str_map(value: object) -> dict[str, str]:
    if not isinstance(value, Mapping):
        return {}
    return {str(k): _text(v) for k, v in value.items()}


def _sequence(value: object) -> Sequence[object]:
    return value if isinstance(value, (list, tuple)) else []
