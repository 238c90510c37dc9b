"""The one operator table: SPEC's operators as data — a value check run at load, a test run per
event. Prepr semantics: references compare by id/slug/name case-insensitively, `fz`/`sw` fold
case and diacritics and ignore HTML, dates may be int seconds, ISO strings or "" (no date)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from .fields import Field, ref_keys
from .regex import compile_regex, regex_error
from .text import fold, normalize, normalize_query
from .timeutil import to_epoch

PARAMS = ("id", "slug", "body", "name")
Scalar = (str, int, float, bool)


@dataclass(frozen=True)
class Operator:
    name: str
    check: Callable[[Any], str | None]  # message for a bad expected value, else None
    test: Callable[[list, Any, Field, "str | None"], bool]
    prepare: Callable[[Any], Any] = lambda v: v


def _keys(c: Any, field: Field, param: str | None) -> list[str]:
    if param and isinstance(c, dict):
        return [str(c[param])] if c.get(param) not in (None, "") else []
    if field.kind == "ref" or isinstance(c, dict):
        return ref_keys(c)
    return [] if c is None else [str(c)]


def _num(v: Any) -> float | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            return to_epoch(v)
    return None


def _eq(c: Any, e: Any, field: Field, param: str | None) -> bool:
    if field.kind == "ref" or isinstance(c, dict):
        target = fold(str(e))
        return any(fold(k) == target for k in _keys(c, field, param))
    if field.kind == "date":
        return to_epoch(c) is not None and to_epoch(c) == to_epoch(e)
    if c == e and type(c) is type(e):
        return True
    if isinstance(e, bool) or isinstance(c, bool):
        return str(c).lower() == str(e).lower()
    a, b = _num(c), _num(e)
    if isinstance(e, (int, float)) and a is not None:
        return a == b
    return str(c) == str(e)


def _present(actual: list) -> list:
    return [c for c in actual if c not in (None, "", [], {})]


def _texts(c: Any, field: Field, param: str | None) -> list[str]:
    return [normalize(k) for k in _keys(c, field, param)]


def _cmp(pred: Callable[[float, float], bool]) -> Callable[[list, Any, Field, Any], bool]:
    def test(actual: list, e: Any, field: Field, param: Any) -> bool:
        bound = _num(e)
        return bound is not None and any((v := _num(c)) is not None and pred(v, bound) for c in actual)
    return test


def _check_scalar(v: Any) -> str | None:
    return None if isinstance(v, Scalar) else "expected a single value (string, number or boolean)"


def _check_list(v: Any) -> str | None:
    if not isinstance(v, list) or not v:
        return "expected a non-empty list of values"
    return None if all(isinstance(x, Scalar) for x in v) else "expected a list of single values"


def _check_bool(v: Any) -> str | None:
    return None if isinstance(v, bool) else "expected true or false"


def _check_text(v: Any) -> str | None:
    return None if isinstance(v, (str, int, float)) and not isinstance(v, bool) else "expected a string"


def _check_bound(v: Any) -> str | None:
    if isinstance(v, bool) or _num(v) is None:
        return "expected a number, a date (ISO 8601) or a timestamp in seconds"
    return None


def _check_regex(v: Any) -> str | None:
    """RE2 patterns only (linear time, see automation.regex); the message is what validate prints."""
    return regex_error(v)


OPERATORS: dict[str, Operator] = {op.name: op for op in (
    Operator("eq", _check_scalar, lambda a, e, f, p: any(_eq(c, e, f, p) for c in a)),
    Operator("neq", _check_scalar, lambda a, e, f, p: not any(_eq(c, e, f, p) for c in a)),
    Operator("in", _check_list, lambda a, e, f, p: any(_eq(c, x, f, p) for c in a for x in e)),
    Operator("all", _check_list, lambda a, e, f, p: all(any(_eq(c, x, f, p) for c in a) for x in e)),
    Operator("has", _check_bool, lambda a, e, f, p: bool(_present(a)) == e),
    Operator("sw", _check_text, lambda a, e, f, p: any(t.startswith(e) for c in a for t in _texts(c, f, p)),
             prepare=lambda v: normalize_query(str(v))),
    Operator("fz", _check_text, lambda a, e, f, p: any(e in t for c in a for t in _texts(c, f, p)),
             prepare=lambda v: normalize_query(str(v))),
    Operator("lt", _check_bound, _cmp(lambda a, b: a < b)),
    Operator("lte", _check_bound, _cmp(lambda a, b: a <= b)),
    Operator("gt", _check_bound, _cmp(lambda a, b: a > b)),
    Operator("gte", _check_bound, _cmp(lambda a, b: a >= b)),
    Operator("matches", _check_regex, lambda a, e, f, p: any(e.search(k) for c in a for k in _keys(c, f, p)),
             prepare=compile_regex),
    Operator("changed", _check_bool, lambda a, e, f, p: False),  # decided against the snapshot
)}
