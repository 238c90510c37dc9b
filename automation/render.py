"""Evaluation results as a person reads them; shared by `explain` (before) and `trace` (after).

Works on the JSON form (RuleResult.to_json(), condition trees), which is also what traces store,
so a stored trace and a live evaluation read the same.
"""
from __future__ import annotations

import json
from typing import Any


def short(value: Any, limit: int = 120) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def condition_lines(node: dict[str, Any] | None, depth: int = 0) -> list[str]:
    """One line per group and condition: ✓/✗, field, operator, expected, and the actual value."""
    pad = "  " * depth
    if node is None:
        return [f"{pad}(no conditions: always)"]
    mark = "✓" if node.get("outcome") else "✗"
    if "children" in node:
        lines = [f"{pad}{mark} {node['op']}"]
        for child in node["children"]:
            lines += condition_lines(child, depth + 1)
        return lines
    return [f"{pad}{mark} {node['field']} {node['operator']} {short(node.get('expected'))}"
            f"  actual: {short(node.get('actual'))}"]


def rule_lines(rule: dict[str, Any]) -> list[str]:
    """A rule's verdict, its conditions (unless a stop rule ended evaluation), values and errors."""
    lines = [f"rule {rule['rule_id']} {rule['status']}" + (" dry run" if rule.get("dry_run") else "")]
    if rule["status"] != "stopped":
        lines += condition_lines(rule.get("condition"), 1)
    lines += [f"  → {short(shown, 200)}" for shown in rule.get("rendered", [])]
    lines += [f"  error: {error}" for error in rule.get("errors", [])]
    return lines
