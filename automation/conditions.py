"""Conditions as data: one operator table, compiled once at load, evaluated into a result tree.

A condition is a mapping `FIELD: {OPERATOR: VALUE}` (or Prepr's list form `FIELD: [{OP: V}]`),
combined with `all`, `any`, `not` at any depth. Evaluation returns a JSON-able tree: groups
`{"op", "outcome", "children"}`, leaves `{"field", "operator", "expected", "actual", "outcome"}`.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from .fields import FILTER_FIELDS, Field, display, resolve_field
from .operators import OPERATORS, PARAMS, Operator
from .text import fold
from .yamlsrc import Reporter

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
        if prepr_only and key in ("any", "not"):
            sub.key_error(f"'{key}' cannot be sent to Prepr (its list filters only AND conditions)")
            continue
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
