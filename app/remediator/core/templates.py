"""Sandboxed templates and expressions: how playbooks read alerts and earlier steps.

Rules that keep label values data, never code:
- templates come only from playbooks; alert labels and annotations are values in the
  context, so a label `{{ 7*7 }}` renders as those seven characters, never as 49;
- rendering happens in Jinja2's immutable sandbox with StrictUndefined, so `__class__`
  tricks raise and a typo (`alert.lables`) fails instead of rendering "";
- a rendered value is never parsed again: a string that is exactly one `{{ expression }}`
  keeps the expression's own type (list, int, bool), anything else renders to a string.
  Callers turning values into argv render each element on its own, so no shell or split
  ever sees a label.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jinja2
from jinja2 import meta, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

from remediator.errors import TemplateError

__all__ = [
    "CONTEXT_ROOTS",
    "TemplateInfo",
    "evaluate",
    "inspect_expression",
    "inspect_template",
    "is_template",
    "render",
    "render_text",
]

CONTEXT_ROOTS = frozenset({"alert", "target", "steps", "params"})
"""The variables a playbook template can see."""

_ENV = ImmutableSandboxedEnvironment(
    undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True,
)
_SINGLE_EXPRESSION = re.compile(r"\{\{-?(.*?)-?\}\}", re.DOTALL)
_MARKERS = ("{{", "}}", "{%", "{#")


@dataclass(frozen=True)
class TemplateInfo:
    """What a template reads, for `remediator validate`.

    `variables`: root names it reads (should be within CONTEXT_ROOTS); `chains`: attribute
    paths from a root, e.g. ("steps", "logs", "output"); `private`: `_`-prefixed attributes.
    """

    variables: frozenset[str]
    chains: tuple[tuple[str, ...], ...]
    private: tuple[str, ...]


def is_template(value: object) -> bool:
    """True for a string with Jinja markup in it."""
    return isinstance(value, str) and any(marker in value for marker in ("{{", "{%", "{#"))


def render(value: Any, context: Mapping[str, Any]) -> Any:
    """Render strings inside value (lists and dict values recursively, keys as they are)."""
    if isinstance(value, str):
        return _render_str(value, context)
    if isinstance(value, list | tuple):
        return [render(item, context) for item in value]
    if isinstance(value, dict):
        return {key: render(item, context) for key, item in value.items()}
    return value


def render_text(source: str, context: Mapping[str, Any]) -> str:
    """Render a template to a string, whatever it contains."""
    try:
        return _template(source).render(**context)
    except jinja2.TemplateError as exc:
        raise _translate(exc, source) from None
    except Exception as exc:  # a sandboxed template can still divide by zero etc.
        raise TemplateError(f"{type(exc).__name__} in {source!r}: {exc}") from None


def evaluate(expression: str, context: Mapping[str, Any]) -> Any:
    """The value of a sandboxed expression (`when:`, `assert`); undefined names raise."""
    try:
        result = _expression(expression)(**context)
        if isinstance(result, jinja2.Undefined):
            str(result)  # StrictUndefined raises here, with the name that was missing
        return result
    except jinja2.TemplateError as exc:
        raise _translate(exc, expression) from None
    except Exception as exc:
        raise TemplateError(f"{type(exc).__name__} in {expression!r}: {exc}") from None


def inspect_template(source: str) -> TemplateInfo:
    """Compile a template (TemplateError on bad syntax) and report what it reads."""
    try:
        _template(source)
        return _info(_ENV.parse(source))
    except jinja2.TemplateError as exc:
        raise _translate(exc, source) from None


def inspect_expression(source: str) -> TemplateInfo:
    """Compile an expression (TemplateError on bad syntax) and report what it reads."""
    if any(marker in source for marker in _MARKERS):
        raise TemplateError(f"an expression is written without {{{{ }}}}: {source!r}")
    try:
        _expression(source)
        return _info(_ENV.parse("{{ " + source + " }}"))
    except jinja2.TemplateError as exc:
        raise _translate(exc, source) from None


def _render_str(source: str, context: Mapping[str, Any]) -> Any:
    match = _SINGLE_EXPRESSION.fullmatch(source)
    if match and not any(marker in match.group(1) for marker in _MARKERS):
        return evaluate(match.group(1).strip(), context)
    if not is_template(source):
        return source
    return render_text(source, context)


@functools.lru_cache(maxsize=1024)
def _template(source: str) -> jinja2.Template:
    return _ENV.from_string(source)


@functools.lru_cache(maxsize=1024)
def _expression(source: str) -> Any:
    return _ENV.compile_expression(source, undefined_to_none=False)


def _translate(exc: jinja2.TemplateError, source: str) -> TemplateError:
    snippet = source if len(source) <= 80 else source[:77] + "..."
    if isinstance(exc, jinja2.TemplateSyntaxError):
        return TemplateError(f"template syntax error in {snippet!r}: {exc.message}")
    if isinstance(exc, jinja2.exceptions.SecurityError):
        return TemplateError(f"refused by the sandbox in {snippet!r}: {exc}")
    if isinstance(exc, jinja2.UndefinedError):
        return TemplateError(f"undefined value in {snippet!r}: {exc}")
    return TemplateError(f"template error in {snippet!r}: {exc}")


def _info(tree: nodes.Template) -> TemplateInfo:
    chains: list[tuple[str, ...]] = []
    private: list[str] = []
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        chain = _chain(node)
        if chain:
            chains.append(chain)
        name = node.attr if isinstance(node, nodes.Getattr) else _const_key(node)
        if name and name.startswith("_"):
            private.append(name)
    return TemplateInfo(frozenset(meta.find_undeclared_variables(tree)), tuple(chains),
                        tuple(private))


def _chain(node: nodes.Node) -> tuple[str, ...] | None:
    """("steps", "logs", "output") for `steps.logs.output` or `steps['logs'].output`."""
    parts: list[str] = []
    while True:
        if isinstance(node, nodes.Getattr):
            parts.append(node.attr)
            node = node.node
        elif isinstance(node, nodes.Getitem) and _const_key(node) is not None:
            parts.append(str(_const_key(node)))
            node = node.node
        elif isinstance(node, nodes.Name):
            return (node.name, *reversed(parts))
        else:
            return None


def _const_key(node: nodes.Node) -> str | None:
    arg = getattr(node, "arg", None)
    if isinstance(arg, nodes.Const) and isinstance(arg.value, str):
        return arg.value
    return None
