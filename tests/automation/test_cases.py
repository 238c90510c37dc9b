"""Planner cases as data: recorded event + item (+ channels, last-fired, clock) -> the fetch and
the exact calls. Each case file says in `description` what it pins down."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from automation import apply_put, evaluate, load_rules

CASES = Path(__file__).resolve().parent / "cases"


@pytest.mark.parametrize("path", sorted(CASES.glob("*.json")), ids=lambda p: p.stem)
def test_planner_case(path: Path) -> None:
    case = json.loads(path.read_text())
    ruleset = load_rules(CASES / case["rules"])
    fetch = ruleset.fetch_plan(case["envelope"])
    assert (fetch.to_json() if fetch else None) == case["expect"]["fetch"]
    result = evaluate(ruleset, case["envelope"], case["item"], channels=case["channels"],
                      last_fired=case.get("last_fired"), now=case["now"])
    assert {r.rule_id: r.status for r in result.rules} == case["expect"]["statuses"]
    assert [c.to_json() for c in result.plan] == case["expect"]["plan"]
    json.dumps(result.to_json())  # the whole evaluation is JSON-able, as traces store it
    puts = [c for c in result.plan if c.kind == "put" and not c.dry_run]
    assert len(puts) <= 1, "one write per item per event"
    if puts:  # idempotent: the item after the PUT needs nothing more
        item = case["item"] if case["item"] is not None else case["envelope"]["payload"]
        again = evaluate(ruleset, case["envelope"], apply_put(item, puts[0].body), channels=case["channels"],
                         last_fired=case.get("last_fired"), now=case["now"])
        assert [c for c in again.plan if c.kind == "put" and not c.dry_run] == []
