"""Conditions as data: one operator table, compiled once at load, evaluated into a result tree.

A condition is a mapping `FIELD: {OPERATOR: VALUE}` (or Prepr's list form `FIELD: [{OP: V}]`),
combined with `all`, `any`, `not` at any depth. Evaluation returns a JSON-able tree: groups
`{"op", "outcome", "children"}`, leaves `{"field", "operator", "expected", "actual", "outcome"}`.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any, Callable

from .fields import FILTER_FIELDS, Field, display, ref_keys, resolve_field
from .text import fold, normalize, normalize_query
from .timeutil import to_epoch
from .yamlsrc import Reporter

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
    if not isinstance(v, str):
        return "expected a regular expression string"
    try:
        re.compile(v)
    except re.error as exc:
        return f"bad regular expression: {exc}"
    return None


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
             prepare=re.compile),
    Operator("changed", _check_bool, lambda a, e, f, p: False),  # decided against the snapshot
)}
GROUPS = ("all", "any", "not")


@dataclass(frozen=True)
class Leaf:
    field: Field
    op: Operator
    expected: Any
    prepared: Any
    param: str | None = None


@dataclass(frozen=True)
class Group:
    kind: str  # all | any | not
    children: tuple


Node = "Leaf | Group"


def fingerprint(values: list, kind: str = "value") -> str:
    """What `changed` remembers of a field: a short digest of its current values. References
    (tags, channels...) are reduced to their sorted names, so Prepr's fuller objects and the
    `{body: name}` we sent digest alike."""
    if kind == "ref":
        values = sorted({fold(str(display(v))) for v in values})
    data = json.dumps(values, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha1(data.encode()).hexdigest()[:16]


class Context:
    """What a condition sees: the item (fetched or payload), the envelope, last-seen digests."""

    def __init__(self, item: dict, envelope: dict, snapshot: dict | None = None) -> None:
        self.item, self.envelope, self.snapshot = item, envelope, snapshot
        self._cache: dict[str, list] = {}

    def values(self, field: Field) -> list:
        if field.name not in self._cache:
            self._cache[field.name] = field.get(self.item, self.envelope)
        return self._cache[field.name]


def evaluate(node: Any, ctx: Context) -> dict:
    if isinstance(node, Group):
        results = []
        for child in node.children:
            results.append(evaluate(child, ctx))
            if node.kind == "all" and not results[-1]["outcome"] or node.kind == "any" and results[-1]["outcome"]:
                break  # short-circuit like Prepr; the tree shows what decided it
        outcome = {"all": all, "any": any}.get(node.kind, lambda r: not r[0]["outcome"])(
            [r["outcome"] for r in results] if node.kind != "not" else results)
        return {"op": node.kind, "outcome": bool(outcome), "children": results}
    actual = ctx.values(node.field)
    if node.op.name == "changed":
        digest = fingerprint(actual, node.field.kind)
        seen = (ctx.snapshot or {}).get(node.field.name)
        differs = seen is None or seen != digest
        outcome = differs == node.expected
        shown = {"now": [display(c) for c in actual], "seen_before": seen is not None, "differs": differs}
    else:
        outcome = node.op.test(actual, node.prepared, node.field, node.param)
        shown = [display(c) for c in actual]
    leaf = {"field": node.field.name, "operator": node.op.name, "expected": node.expected,
            "actual": shown, "outcome": bool(outcome)}
    if node.param:
        leaf["param"] = node.param
    return leaf


def walk_leaves(node: Any):
    if isinstance(node, Group):
        for child in node.children:
            yield from walk_leaves(child)
    elif node is not None:
        yield node


def compile_condition(value: Any, report: Reporter, prepr_only: bool = False) -> Group | None:
    """Mapping (or list of mappings) -> Group('all', ...); errors reported at their key path.

    prepr_only: a bulk filter, sent to Prepr as is — no `matches`, `changed` or resource paths."""
    if isinstance(value, list):
        children = [compile_condition(v, report.at(i), prepr_only) for i, v in enumerate(value)]
        return Group("all", tuple(c for c in children if c is not None))
    if not isinstance(value, dict):
        report.error("expected a mapping of conditions (FIELD: {OPERATOR: VALUE}, all, any, not)")
        return None
    children: list = []
    for key, spec in value.items():
        sub = report.at(key)
        if key in ("all", "any"):
            if not isinstance(spec, list) or not spec:
                sub.error(f"'{key}' expects a non-empty list of conditions")
                continue
            parts = [compile_condition(v, sub.at(i), prepr_only) for i, v in enumerate(spec)]
            children.append(Group(key, tuple(p for p in parts if p is not None)))
        elif key == "not":
            inner = compile_condition(spec, sub, prepr_only)
            if inner is not None:
                children.append(Group("not", (inner,)))
        else:
            children.extend(_compile_field(str(key), spec, sub, prepr_only))
    return Group("all", tuple(children))


def _compile_field(name: str, spec: Any, report: Reporter, prepr_only: bool) -> list[Leaf]:
    field = resolve_field(name)
    if field is None:
        report.key_error(f"unknown field '{name}' (a Prepr filter name, a path like items.*.title.body, "
                         "or event.<path>)")
        return []
    if prepr_only and name not in FILTER_FIELDS:
        report.key_error(f"'{name}' is not a Prepr publication filter ({', '.join(FILTER_FIELDS)})")
        return []
    specs = spec if isinstance(spec, list) else [spec]
    leaves: list[Leaf] = []
    for i, one in enumerate(specs):
        sub = report.at(i) if isinstance(spec, list) else report
        if not isinstance(one, dict) or not one:
            sub.error("expected {OPERATOR: VALUE}, e.g. {eq: football}")
            continue
        param = one.get("param")
        if param is not None and param not in PARAMS:
            sub.error(f"param must be one of {', '.join(PARAMS)}", "param")
            param = None
        for op_name, expected in one.items():
            if op_name == "param":
                continue
            op = OPERATORS.get(op_name)
            if op is None:
                sub.key_error(f"unknown operator '{op_name}' (known: {', '.join(OPERATORS)})", op_name)
                continue
            if prepr_only and op_name in ("matches", "changed"):
                sub.key_error(f"'{op_name}' is not a Prepr filter operator (bulk filters go to Prepr as is)",
                              op_name)
                continue
            problem = op.check(expected)
            if problem:
                sub.error(problem, op_name)
                continue
            leaves.append(Leaf(field, op, expected, op.prepare(expected), param))
    return leaves


def needs(node: Any, resource: str) -> frozenset[str]:
    out: set[str] = set()
    for leaf in walk_leaves(node):
        out |= leaf.field.needs(resource)
    return frozenset(out)


def changed_fields(node: Any) -> list[Field]:
    return [leaf.field for leaf in walk_leaves(node) if leaf.op.name == "changed"]
