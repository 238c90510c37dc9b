"""The Jinja2 environment every rule template runs in: sandboxed, immutable, on a budget.

Immutable sandbox: `{{ item.clear() }}` cannot change what later rules see. Everything a template
can do to make a large value or text is measured before it runs (automation.safefilters, the
`*`/`+`/`%`/`~` operators here), and loops, calls and reads check the render's deadline
(automation.budget), so a template is bounded in size and time whatever it says.
"""
from __future__ import annotations

import operator
from numbers import Number
from typing import Any

from jinja2 import StrictUndefined, nodes
from jinja2.compiler import CodeGenerator
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from . import budget
from .safefilters import BudgetFormatter, check_method, guarded_filters, percent

MAX_EXPONENT = 1_000


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
    """Keys win over dict methods, so `item.items['en-GB']` reads Prepr's `items`, not dict.items."""

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
