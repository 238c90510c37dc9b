"""Jinja2's filters and the str/bytes methods a template can call, each measured before it runs.

Why each: the filter builds text whose size is not the size of its input — `center`/`indent`/
`wordwrap` pad or repeat by an argument, `join`/`replace` multiply, `format` and `%` expand widths
and repeat fields, `batch`/`slice` pad to a count, `tojson` indents per level. Each wrapper computes
what the call would build (cheaply, from lengths and counts) and refuses past the budget
(automation.budget) before Jinja's own filter allocates anything. Every filter checks the deadline.
"""
from __future__ import annotations

import datetime
import functools
import re
from string import Formatter
from typing import Any, Callable

from jinja2 import filters as jf
from jinja2.sandbox import SandboxedFormatter
from jinja2.utils import _PassArg

from .budget import RenderBudgetError, max_bytes, stepping, text_of, tick, weight, would_build

_SPEC = re.compile(r"%(?:\(([^)]*)\))?[-+ #0]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?([a-zA-Z%])")
_FORMAT_SPEC = re.compile(r"^(?:.?[<>=^])?[-+ ]?z?#?0?(\d*)[,_]?(?:\.(\d+))?")


def percent(fmt: str, args: Any) -> str:
    """`fmt % args` (the `%` operator and the `format` filter), bounded before it runs: every
    conversion counts its width plus the text of the value it prints."""
    specs = list(_SPEC.finditer(fmt))
    if any(m.group(2) == "*" or m.group(3) == "*" for m in specs):
        raise RenderBudgetError("a `%` format with a `*` width or precision is not allowed in templates")
    values = list(args) if isinstance(args, tuple) else None
    size, position = len(fmt), 0
    for spec in specs:
        if spec.group(4) == "%":
            continue
        if spec.group(1) is not None and isinstance(args, dict):
            value = args.get(spec.group(1), "")
        elif values is not None:
            value = values[position] if position < len(values) else ""
            position += 1
        else:
            value = args
        shown = weight(value, max_bytes() + 1) * (10 if spec.group(4) in "ra" else 1)
        size += max(int(spec.group(2) or 0), shown) + int(spec.group(3) or 0)
        would_build(size, "a `%` format")
    return fmt % args


class BudgetFormatter(SandboxedFormatter):
    """str.format / format_map in the sandbox, with each field's width and the total bounded."""

    def __init__(self, env: Any) -> None:
        super().__init__(env)
        self.made = 0

    def format_field(self, value: Any, format_spec: str) -> Any:
        tick()
        match = _FORMAT_SPEC.match(format_spec)
        width = int(match.group(1) or 0) if match else 0
        precision = int(match.group(2) or 0) if match else 0
        # a date's spec (`{:%c}`) expands each directive: at most ~12 characters per spec character
        would_build(max(width, precision, 12 * len(format_spec), weight(value, max_bytes() + 1)),
                    f"the format field {{:{format_spec[:20]}}}")
        text = Formatter.format_field(self, value, format_spec)
        self.made += len(text)
        would_build(self.made, "str.format")
        return text


def _value_index(func: Callable[..., Any]) -> int:
    return 0 if _PassArg.from_obj(func) is None else 1


def _guard(name: str, func: Callable[..., Any], measure: Callable[..., int] | None) -> Callable[..., Any]:
    first = _value_index(func)

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        tick()
        if name in ("join", "sum") and len(args) > first and not isinstance(args[first], (str, list, tuple, dict)):
            args = (*args[:first], _items(args[first]), *args[first + 1:])  # measured and then joined
        if measure is not None:
            would_build(measure(*args[first:], **kwargs), f"the `{name}` filter")
        result = func(*args, **kwargs)
        if name in _LAZY and hasattr(result, "__next__"):
            return stepping(result)
        return result

    return wrapper


def _len(value: Any) -> int:
    return len(value) if isinstance(value, str) else weight(value, max_bytes() + 1)


def _width(value: Any) -> int:
    return len(value) if isinstance(value, str) else int(value) if isinstance(value, (int, float)) else 0


def _items(value: Any) -> list:
    return list(stepping(value)) if not isinstance(value, (str, list, tuple)) else list(value)


def _center(value: Any, width: Any = 80) -> int:
    return max(_len(value), _width(width))


def _indent(s: Any, width: Any = 4, first: bool = False, blank: bool = False) -> int:
    text = text_of(s, "indent")
    return len(text) + _width(width) * (text.count("\n") + 1)


def _join(value: Any, d: Any = "", attribute: Any = None) -> int:
    items = value if isinstance(value, str) else _items(value)
    return sum(_len(i) for i in items) + _len(d) * max(len(items) - 1, 0)


def _replace(s: Any, old: Any, new: Any, count: Any = None) -> int:
    text, old_text, new_text = text_of(s, "replace"), text_of(old, "replace"), text_of(new, "replace")
    hits = text.count(old_text) if old_text else len(text) + 1
    if isinstance(count, int) and count >= 0:
        hits = min(hits, count)
    return len(text) + hits * max(len(new_text) - len(old_text), 0)


def _wordwrap(s: Any, width: int = 79, break_long_words: bool = True, wrapstring: Any = None,
              break_on_hyphens: bool = True) -> int:
    text = text_of(s, "wordwrap")
    lines = len(text) // max(int(width), 1) + text.count("\n") + text.count(" ") + 1
    return len(text) + _len(wrapstring or "\n") * lines


def _batch(value: Any, linecount: int, fill_with: Any = None) -> int:
    return int(linecount) if fill_with is not None else 0


def _slice(value: Any, slices: int, fill_with: Any = None) -> int:
    return int(slices)


def _tojson(value: Any, indent: Any = None) -> int:
    if indent is not None and int(indent) > 16:
        raise RenderBudgetError("tojson indents at most 16")
    return weight(value, max_bytes() + 1) * (1 + int(indent or 0))


def _urlize(value: Any, trim_url_limit: Any = None, nofollow: bool = False, target: Any = None,
            rel: Any = None, extra_schemes: Any = None) -> int:
    text = text_of(value, "urlize")
    return 6 * len(text) + len(text.split()) * (_len(target or "") + _len(rel or "") + 64)


def _sum(iterable: Any, attribute: Any = None, start: Any = 0) -> int:
    return 0 if isinstance(start, (int, float)) else weight(start) + sum(weight(i) for i in _items(iterable))


def _whole(value: Any, *args: Any, **kwargs: Any) -> int:
    return 0 if isinstance(value, (str, int, float)) else weight(value, max_bytes() + 1)


_MEASURES: dict[str, Callable[..., int]] = {
    "center": _center, "indent": _indent, "join": _join, "replace": _replace, "wordwrap": _wordwrap,
    "batch": _batch, "slice": _slice, "tojson": _tojson, "urlize": _urlize, "sum": _sum,
    **{name: _whole for name in ("capitalize", "escape", "e", "forceescape", "lower", "upper", "title", "trim",
                                 "striptags", "string", "truncate", "urlencode", "wordcount", "pprint", "xmlattr")},
}
_LAZY = {"map", "select", "reject", "selectattr", "rejectattr"}


def _format(value: Any, *args: Any, **kwargs: Any) -> str:
    if args and kwargs:
        raise jf.FilterArgumentError("can't handle positional and keyword arguments at the same time")
    return percent(text_of(value, "format"), kwargs or args)


def guarded_filters(builtin: dict[str, Callable[..., Any]]) -> dict[str, Callable[..., Any]]:
    """Every builtin filter wrapped: measured where it can grow text, deadline-checked always."""
    out = {name: _guard(name, func, _MEASURES.get(name)) for name, func in builtin.items()}
    out["format"] = _guard("format", _format, None)
    out["list"] = _guard("list", lambda value: _items(value), None)
    return out


_WIDENING = {"center", "ljust", "rjust", "zfill"}


def check_method(method: Any, args: tuple, kwargs: dict) -> tuple:
    """A str/bytes method called from a template: refuse what would build past the budget.
    Returns the arguments to call it with (an iterator given to join() is read once, here)."""
    owner = getattr(method, "__self__", None)
    name = getattr(method, "__name__", "")
    if isinstance(owner, (datetime.date, datetime.time)) and name == "strftime" and args:
        would_build(12 * len(str(args[0])), "strftime()")
    if not isinstance(owner, (str, bytes, bytearray, int)) or isinstance(owner, bool):
        return args
    if isinstance(owner, int):
        if name == "to_bytes":
            would_build(int(args[0]) if args else int(kwargs.get("length", 1)), "int.to_bytes")
        return args
    if name in _WIDENING and args:
        would_build(max(len(owner), int(args[0])), f"{name}()")
    elif name == "expandtabs":
        would_build(len(owner) + owner.count("\t" if isinstance(owner, str) else b"\t") * int(args[0] if args else 8),
                    "expandtabs()")
    elif name == "join" and args:
        items = _items(args[0])
        would_build(sum(_len(i) for i in items) + len(owner) * max(len(items) - 1, 0), "join()")
        args = (items,)
    elif name == "replace" and len(args) >= 2:
        hits = owner.count(args[0]) if args[0] else len(owner) + 1
        hits = min(hits, int(args[2])) if len(args) > 2 and int(args[2]) >= 0 else hits
        would_build(len(owner) + hits * max(len(args[1]) - len(args[0]), 0), "replace()")
    elif name == "translate":
        raise RenderBudgetError("translate() is not allowed in templates")
    return args
