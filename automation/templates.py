"""Templated values: Jinja2 sandboxed, strict undefined, compiled once at load.

A value tree (dict/list/scalars) is compiled into the same tree with template strings replaced
by `Tmpl`; rendering walks it within one rendering budget (automation.budget: output size and
time; the filters measured in automation.safefilters). A render error or an exceeded budget
becomes ActionError (a rule error in the Evaluation), never an exception out of the engine. `item_keys` tells the fetch planner which
top-level item fields a template reads, from the template's AST.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import operator
from numbers import Number

from jinja2 import StrictUndefined, TemplateSyntaxError, nodes
from jinja2.compiler import CodeGenerator
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from . import budget
from .errors import ActionError
from .safefilters import BudgetFormatter, check_method, guarded_filters, percent
from .yamlsrc import Reporter

MAX_TEMPLATE_CHARS = 10_000  # one template string in a rule file
MAX_EXPONENT = 1_000
MAX_ERROR_CHARS = 300  # a template's error as the trace shows it


class _Budgeted(CodeGenerator):
    """Code that keeps the rendering budget (automation.budget).

    No constant folding: Jinja evaluates constant output (`{{ 10**100000 }}`) while compiling; here
    every expression waits for render time. Literal text counts as output where it is written (also
    into `{% set %}` blocks and macros), and `~` measures what it would join before joining."""

    def _output_child_to_const(self, node: nodes.Expr, frame: Any, finalize: Any) -> str:
        if isinstance(node, nodes.TemplateData):
            return super()._output_child_to_const(node, frame, finalize)
        raise nodes.Impossible()

    def visit_Output(self, node: nodes.Output, frame: Any) -> None:
        literal = sum(len(child.data) for child in node.nodes if isinstance(child, nodes.TemplateData))
        if literal:
            self.writeline(f"environment.budget_emit({literal})")
        super().visit_Output(node, frame)

    def visit_Concat(self, node: nodes.Concat, frame: Any) -> None:
        self.write("environment.budget_concat((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


def _size(value: Any) -> int:
    return len(value) if isinstance(value, (str, bytes, list, tuple)) else 0


def _lipsum(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> str:
    from jinja2.utils import generate_lorem_ipsum

    budget.would_build(int(n) * int(max) * 12, "lipsum")
    return generate_lorem_ipsum(n, html, min, max)


class _Env(ImmutableSandboxedEnvironment):
    """Immutable sandbox: `{{ item.clear() }}` cannot change what later rules see. Keys win over
    dict methods, so `item.items['en-GB']` reads Prepr's `items`, not dict.items. Everything that
    can make a large value or text is measured before it runs (automation.safefilters), and loops,
    calls and reads check the render's deadline."""

    intercepted_binops = frozenset({"*", "**", "%", "+"})
    code_generator_class = _Budgeted

    def __init__(self, **options: Any) -> None:
        super().__init__(finalize=self._finalize, **options)
        self.filters = guarded_filters(self.filters)
        self.globals["lipsum"] = _lipsum
        self.globals[_LOOP] = budget.stepping

    @staticmethod
    def _finalize(value: Any) -> Any:
        budget.emit(budget.weight(value, 4 * budget.max_bytes() + 1))
        return value

    @staticmethod
    def budget_emit(size: int) -> None:
        budget.emit(size)

    @staticmethod
    def budget_concat(parts: tuple) -> str:
        budget.would_build(sum(budget.weight(p, budget.max_bytes() + 1) for p in parts), "`~`")
        return "".join(str(p) for p in parts)

    def _parse(self, source: str, name: Any, filename: Any) -> nodes.Template:
        """Every `{% for %}` iterates through budget.stepping: a deadline check per step."""
        ast = super()._parse(source, name, filename)
        for loop in list(ast.find_all(nodes.For)):
            call = nodes.Call(nodes.Name(_LOOP, "load"), [loop.iter], [], None, None, lineno=loop.lineno)
            loop.iter = call.set_environment(self)
        return ast

    def getattr(self, obj: Any, attribute: str) -> Any:
        budget.tick()
        if isinstance(obj, dict) and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        budget.tick()
        return super().getitem(obj, argument)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        budget.tick()
        args = check_method(__obj, args, kwargs)
        return super().call(__context, __obj, *args, **kwargs)

    def wrap_str_format(self, value: Any) -> Any:
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        owner, is_map = value.__self__, value.__name__ == "format_map"

        def budgeted(*args: Any, **kwargs: Any) -> str:
            if is_map:
                if kwargs or len(args) != 1:
                    raise TypeError("format_map() takes exactly one argument")
                args, kwargs = (), args[0]
            return type(owner)(BudgetFormatter(self).vformat(owner, args, kwargs))

        return budgeted

    def call_binop(self, context: Any, op: str, left: Any, right: Any) -> Any:
        budget.tick()
        if op == "**" and isinstance(right, Number) and abs(right) > MAX_EXPONENT:
            raise SecurityError(f"exponent {right} is over the limit of {MAX_EXPONENT}")
        if op == "*":  # strings by characters, lists by items (what they print is measured at output)
            for seq, times in ((left, right), (right, left)):
                if _size(seq) and isinstance(times, int):
                    budget.would_build(_size(seq) * times, "`*`")
        if op == "+" and _size(left) and _size(right):
            budget.would_build(_size(left) + _size(right), "`+`")
        if op == "%" and isinstance(left, str):
            return percent(left, right)
        result = {"*": operator.mul, "**": operator.pow, "%": operator.mod, "+": operator.add}[op](left, right)
        if isinstance(result, int) and result.bit_length() > 4 * MAX_EXPONENT:
            raise SecurityError("a number over the size limit")
        return result


_LOOP = "budget_loop"
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
