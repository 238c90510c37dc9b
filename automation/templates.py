"""Templated values: Jinja2 sandboxed, strict undefined, compiled once at load.

A value tree (dict/list/scalars) is compiled into the same tree with template strings replaced
by `Tmpl`; rendering walks it. A render error becomes ActionError (a rule error in the
Evaluation), never an exception out of the engine. `item_keys` tells the fetch planner which
top-level item fields a template reads, from the template's AST.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import operator
import re
from numbers import Number

from jinja2 import StrictUndefined, TemplateSyntaxError, nodes
from jinja2.compiler import CodeGenerator
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from .errors import ActionError
from .yamlsrc import Reporter

MAX_TEMPLATE_CHARS = 10_000  # one template string in a rule file
MAX_VALUE_CHARS = 100_000  # a string or list a template builds by `*` or `**`
MAX_EXPONENT = 1_000


class _NoFolding(CodeGenerator):
    """Jinja evaluates constant output (`{{ 10**100000 }}`) while compiling; here every
    expression waits for render time, where the sandbox's limits apply."""

    def _output_child_to_const(self, node: nodes.Expr, frame: Any, finalize: Any) -> str:
        if isinstance(node, nodes.TemplateData):
            return super()._output_child_to_const(node, frame, finalize)
        raise nodes.Impossible()


_WIDE = re.compile(r"%[-+ #0]*(\*|\d{5,}|\d*\.(\*|\d{5,}))")


def _size(value: Any) -> int:
    return len(value) if isinstance(value, (str, bytes, list, tuple)) else 0


class _Env(ImmutableSandboxedEnvironment):
    """Immutable sandbox: `{{ item.clear() }}` cannot change what later rules see. Keys win over
    dict methods, so `item.items['en-GB']` reads Prepr's `items`, not dict.items. `*`, `**` and
    `%` are checked before they run, so no template builds a huge number or string."""

    intercepted_binops = frozenset({"*", "**", "%"})
    code_generator_class = _NoFolding

    def getattr(self, obj: Any, attribute: str) -> Any:
        if isinstance(obj, dict) and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)

    def call_binop(self, context: Any, op: str, left: Any, right: Any) -> Any:
        if op == "**" and isinstance(right, Number) and abs(right) > MAX_EXPONENT:
            raise SecurityError(f"exponent {right} is over the limit of {MAX_EXPONENT}")
        if op == "*":
            for seq, times in ((left, right), (right, left)):
                if _size(seq) and isinstance(times, int) and _size(seq) * times > MAX_VALUE_CHARS:
                    raise SecurityError(f"a value of more than {MAX_VALUE_CHARS} items")
        if op == "%" and isinstance(left, str) and _WIDE.search(left):
            raise SecurityError("a `%` format with a width or precision over 4 digits or `*`")
        result = {"*": operator.mul, "**": operator.pow, "%": operator.mod}[op](left, right)
        if isinstance(result, int) and result.bit_length() > 4 * MAX_EXPONENT:
            raise SecurityError("a number over the size limit")
        return result


ENV = _Env(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True, optimized=False)
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
