"""Rule tests: `tests:` cases beside `rules:` in a rule file, run offline by the real engine.

A case gives an event (and optionally the item as Prepr returns it) and what must follow: rules
that fire, rules that do not, and the exact calls that would be sent (`body` matches as a
subset). It runs against its own file's rules through `evaluate`, with no Redis and no HTTP.
"""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

from marshmallow import INCLUDE, Schema, fields, validate

from .actions.base import StringList, load_partial
from .events import check_pattern, is_glob
from .model import RuleSet
from .planner import Evaluation, evaluate
from .yamlsrc import Reporter

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


class EventSchema(Schema):
    """The envelope as Prepr sends it; other keys (id, created_on, dc...) are kept, as at the door."""

    class Meta:
        unknown = INCLUDE

    event = fields.String(required=True, validate=validate.Length(min=1))
    payload = fields.Dict(load_default=dict)
    performed_by = fields.Raw()


class CallSchema(Schema):
    method = fields.String(required=True, validate=validate.OneOf(METHODS))
    path = fields.String(required=True, validate=validate.Length(min=1))
    body = fields.Raw()


class ExpectSchema(Schema):
    fired = StringList()
    not_fired = StringList()
    calls = fields.List(fields.Nested(CallSchema))


class CaseSchema(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1))
    event = fields.Nested(EventSchema, required=True)
    item = fields.Dict()
    channels = fields.List(fields.Dict())  # Prepr's channel list, to resolve channel names
    now = fields.AwareDateTime(default_timezone=dt.timezone.utc)  # the clock, for date conditions
    expect = fields.Nested(ExpectSchema, required=True)


@dataclass(frozen=True)
class RuleCase:
    name: str
    file: str
    line: int
    envelope: dict
    expect: dict
    item: dict | None = None
    channels: list | None = None
    now: dt.datetime | None = None


@dataclass
class CaseResult:
    case: RuleCase
    evaluation: Evaluation | None
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures


def compile_cases(raw: Any, report: Reporter, rule_ids: set[str]) -> list[RuleCase]:
    """`tests:` -> cases; every problem (shape, ids that are no rule of this file) reported."""
    if not isinstance(raw, list):  # the file schema has said so
        return []
    cases = []
    for index, entry in enumerate(raw):
        at = report.at(index)
        before = at.count
        data, _ = load_partial(CaseSchema(), entry, at)
        name = data.get("event", {}).get("event")
        if isinstance(name, str) and (is_glob(name) or check_pattern(name)):
            at.error(check_pattern(name) or "a test event is one event name, not a glob", "event", "event")
        for key in ("fired", "not_fired"):
            for i, rule_id in enumerate(data.get("expect", {}).get(key, [])):
                if rule_id not in rule_ids:
                    at.error(f"no rule '{rule_id}' in this file", "expect", key, i)
        if at.count != before:
            continue
        envelope = {"id": f"test-{index}", **data["event"]}
        line, _ = at.source.position(at.base, at_key=False)
        cases.append(RuleCase(data["name"], at.source.name, line, envelope, data["expect"],
                              data.get("item"), data.get("channels"), data.get("now")))
    return cases


def run_case(ruleset: RuleSet, case: RuleCase) -> CaseResult:
    """Evaluate one case against the rules of its own file; each unmet expectation is a failure."""
    own = RuleSet(tuple(r for r in ruleset.rules if r.file == case.file), (case.file,),
                  encode_filter=ruleset.encode_filter)
    result = evaluate(own, case.envelope, case.item, channels=case.channels, now=case.now)
    out = CaseResult(case, result)
    fired = set(result.fired)
    for rule_id in case.expect.get("fired", []):
        if rule_id not in fired:
            status = next((r.status for r in result.rules if r.rule_id == rule_id), "not listening")
            errors = next((r.errors for r in result.rules if r.rule_id == rule_id), ())
            out.failures.append(f"expected '{rule_id}' to fire; it was {status}"
                                + (f" ({'; '.join(errors)})" if errors else ""))
    for rule_id in case.expect.get("not_fired", []):
        if rule_id in fired:
            out.failures.append(f"expected '{rule_id}' not to fire; it fired")
    if "calls" in case.expect:
        planned = [c.to_json() for c in result.plan if not c.dry_run]
        if not calls_match(case.expect["calls"], planned):
            out.failures.append("calls differ\n  expected:\n" + _calls(case.expect["calls"])
                                + "\n  planned:\n" + _calls(planned))
    return out


def calls_match(expected: list[dict], planned: list[dict]) -> bool:
    """Same number of calls, each expected one met by its own planned one (in any order)."""
    if len(expected) != len(planned):
        return False
    left = list(planned)
    for want in expected:
        hit = next((c for c in left if c["method"] == want["method"] and _item(c["path"]) == _item(want["path"])
                    and ("body" not in want or is_subset(want["body"], c["body"]))), None)
        if hit is None:
            return False
        left.remove(hit)
    return True


def _item(path: str) -> str:
    """Tests name items, not dialects: `/content_items/x` and `/publications/x` are one item."""
    return "/publications/" + path[len("/content_items/"):] if path.startswith("/content_items/") else path


def is_subset(want: Any, got: Any) -> bool:
    """Mappings: every expected key present and matching; lists: same length, item by item."""
    if isinstance(want, dict):
        return isinstance(got, dict) and all(k in got and is_subset(v, got[k]) for k, v in want.items())
    if isinstance(want, list):
        return isinstance(got, list) and len(want) == len(got) and all(map(is_subset, want, got))
    return want == got


def _calls(calls: list[dict]) -> str:
    if not calls:
        return "    (none)"
    return "\n".join(f"    {c['method']} {c['path']}"
                     + (f" {json.dumps(c['body'], ensure_ascii=False, sort_keys=True, default=str)}"
                        if c.get("body") is not None else "") for c in calls)
