"""Templated values: Jinja2 sandboxed, strict undefined, compiled once at load.

A value tree (dict/list/scalars) is compiled into the same tree with template strings replaced
by `Tmpl`; rendering walks it. A render error becomes ActionError (a rule error in the
Evaluation), never an exception out of the engine. `item_keys` tells the fetch planner which
top-level item fields a template reads, from the template's AST.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, nodes
from jinja2.sandbox import SandboxedEnvironment

from .errors import ActionError
from .yamlsrc import Reporter

class _Env(SandboxedEnvironment):
    """Keys win over dict methods, so `item.items['en-GB']` reads Prepr's `items`, not dict.items."""

    def getattr(self, obj: Any, attribute: str) -> Any:
        if isinstance(obj, dict) and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)


ENV = _Env(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
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
        try:
            ast = ENV.parse(value)
            return Tmpl(value, ENV.from_string(value), _item_keys(ast))
        except TemplateSyntaxError as exc:
            report.error(f"template does not compile: {exc.message} (template line {exc.lineno})")
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
    """Render every template in the tree; raise ActionError naming the template on failure."""
    if isinstance(value, Tmpl):
        try:
            return value.template.render(context)
        except Exception as exc:  # jinja raises many kinds; all are the rule's fault
            raise ActionError(f"template {value.source!r}: {type(exc).__name__}: {exc}") from None
    if isinstance(value, dict):
        return {k: render(v, context) for k, v in value.items()}
    if isinstance(value, list):
        return [render(v, context) for v in value]
    return value


def has_templates(value: Any) -> bool:
    if isinstance(value, Tmpl):
        return True
    if isinstance(value, dict):
        return any(has_templates(v) for v in value.values())
    if isinstance(value, list):
        return any(has_templates(v) for v in value)
    return False
