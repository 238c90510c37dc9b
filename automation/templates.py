"""Templated values: Jinja2 sandboxed, strict undefined, compiled once at load.

A value tree (dict/list/scalars) is compiled into the same tree with template strings replaced
by `Tmpl`; rendering walks it within one rendering budget (automation.budget: output size and
time; the filters measured in automation.safefilters). A render error or an exceeded budget
becomes ActionError (a rule error in the Evaluation), never an exception out of the engine.
`item_keys` tells the fetch planner which top-level item fields a template reads, from the AST.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from jinja2 import TemplateSyntaxError, nodes

from . import budget
from .errors import ActionError
from .jinja_env import ENV
from .yamlsrc import Reporter

MAX_TEMPLATE_CHARS = 10_000  # one template string in a rule file
MAX_ERROR_CHARS = 300  # a template's error as the trace shows it
WHOLE = "*"  # marker: the template uses the item as a whole (or dynamically)


@dataclass(frozen=True)
class Tmpl:
    source: str
    template: Any = field(compare=False, repr=False)
    item_keys: frozenset[str] = frozenset()


def is_template(text: str) -> bool:
    return "{{" in text or "{%" in text


def _item_keys(ast: nodes.Template) -> frozenset[str]:
    keys: set[str] = set()
    parents = {id(n.node) for n in ast.find_all((nodes.Getattr, nodes.Getitem))}
    for node in ast.find_all((nodes.Getattr, nodes.Getitem)):
        inner = node.node
        if isinstance(inner, nodes.Name) and inner.name == "item":
            if isinstance(node, nodes.Getattr):
                keys.add(node.attr)
            elif isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
                keys.add(node.arg.value)
            else:
                keys.add(WHOLE)
    for name in ast.find_all(nodes.Name):
        if name.name == "item" and id(name) not in parents:
            keys.add(WHOLE)
    return frozenset(keys)


def compile_value(value: Any, report: Reporter) -> Any:
    """Same tree with every template string compiled; syntax errors reported at their path."""
    if isinstance(value, dict):
        return {k: compile_value(v, report.at(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [compile_value(v, report.at(i)) for i, v in enumerate(value)]
    if isinstance(value, str) and is_template(value):
        if len(value) > MAX_TEMPLATE_CHARS:
            report.error(f"template longer than {MAX_TEMPLATE_CHARS} characters")
            return value
        try:
            ast = ENV.parse(value)
            return Tmpl(value, ENV.from_string(value), _item_keys(ast))
        except TemplateSyntaxError as exc:
            report.error(f"template does not compile: {exc.message} (template line {exc.lineno})")
            return value
        except (RecursionError, MemoryError):
            report.error("template nested too deeply")
            return value
    return value


def item_keys(value: Any) -> frozenset[str]:
    if isinstance(value, Tmpl):
        return value.item_keys
    if isinstance(value, dict):
        return frozenset().union(*(item_keys(v) for v in value.values())) if value else frozenset()
    if isinstance(value, list):
        return frozenset().union(*(item_keys(v) for v in value)) if value else frozenset()
    return frozenset()


def render(value: Any, context: dict[str, Any]) -> Any:
    """Render every template in the tree within one budget (size and time, automation.budget);
    raise ActionError naming the template on failure. No rendered value exceeds MAX_RENDERED_BYTES."""
    with budget.rendering():
        return _render(value, context)


def _render(value: Any, context: dict[str, Any]) -> Any:
    if isinstance(value, Tmpl):
        try:
            return _render_one(value, context)
        except Exception as exc:  # jinja raises many kinds; all are the rule's fault
            message = str(exc) if isinstance(exc, budget.RenderBudgetError) else f"{type(exc).__name__}: {exc}"
            if len(message) > MAX_ERROR_CHARS:
                message = message[: MAX_ERROR_CHARS - 3] + "..."
            source = value.source if len(value.source) <= 200 else value.source[:197] + "..."
            raise ActionError(f"template {source!r}: {message}") from None
    if isinstance(value, dict):
        return {k: _render(v, context) for k, v in value.items()}
    if isinstance(value, list):
        return [_render(v, context) for v in value]
    return value


def _render_one(value: Tmpl, context: dict[str, Any]) -> str:
    """The template's pieces, counted as they come: the output never grows past the limit."""
    limit, size, pieces = budget.max_bytes(), 0, []
    for piece in value.template.generate(context):
        size += len(piece.encode("utf-8", "surrogatepass"))
        if size > limit:
            raise budget.RenderBudgetError(f"template output exceeds {limit} bytes")
        pieces.append(piece)
    return "".join(pieces)


def has_templates(value: Any) -> bool:
    if isinstance(value, Tmpl):
        return True
    if isinstance(value, dict):
        return any(has_templates(v) for v in value.values())
    if isinstance(value, list):
        return any(has_templates(v) for v in value)
    return False
