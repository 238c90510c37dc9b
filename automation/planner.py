"""evaluate(): rules matched against one event -> result trees and ONE merged plan.

Pure over data: the caller passes the envelope, the item (fetched, or None to use the payload),
the last-seen snapshot, when each rule last fired for this item, the channel list and the
clock; it gets back what matched, why, and the calls to make. A rule is atomic: if one of its
actions fails (template, unknown channel...), none of its contributions are planned.
"""
from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field, replace
from typing import Any, Mapping, Sequence

from .actions import PlanContext
from .calls import RESOURCE_PATHS, FetchPlan, PlannedCall, plain_id, resource_path
from .conditions import Context, evaluate as evaluate_condition, fingerprint
from .draft import Draft, apply_put
from .errors import ActionError
from .events import canonical, resource_kind
from .fields import locales_of


@dataclass(frozen=True)
class RuleResult:
    rule_id: str
    status: str  # fired | not_matched | throttled | error | stopped
    matched: bool
    condition: dict | None = None
    rendered: tuple = ()
    errors: tuple[str, ...] = ()
    dry_run: bool = False
    stop: bool = False

    def to_json(self) -> dict:
        return {"rule_id": self.rule_id, "status": self.status, "matched": self.matched,
                "condition": self.condition, "rendered": list(self.rendered),
                "errors": list(self.errors), "dry_run": self.dry_run, "stop": self.stop}


@dataclass(frozen=True)
class Evaluation:
    event: str
    resource: str
    item_id: str | None
    rules: tuple[RuleResult, ...]
    plan: tuple[PlannedCall, ...]
    fired: tuple[str, ...]
    snapshot: dict = field(default_factory=dict)

    @property
    def errors(self) -> list[tuple[str, str]]:
        return [(r.rule_id, e) for r in self.rules for e in r.errors]

    def to_json(self) -> dict:
        return {"event": self.event, "resource": self.resource, "item_id": self.item_id,
                "rules": [r.to_json() for r in self.rules], "plan": [c.to_json() for c in self.plan],
                "fired": list(self.fired), "snapshot": self.snapshot}


def _payload(envelope: Mapping) -> dict:
    payload = envelope.get("payload")
    return payload if isinstance(payload, dict) else {}


def _now(now: Any) -> dt.datetime:
    if isinstance(now, dt.datetime):
        return now if now.tzinfo else now.replace(tzinfo=dt.timezone.utc)
    return dt.datetime.fromtimestamp(time.time() if now is None else float(now), dt.timezone.utc)


def fetch_plan(ruleset: Any, envelope: Mapping, *, snapshot: dict | None = None,
               write_fields: Sequence[str] = ()) -> FetchPlan | None:
    """The one GET to make before evaluate(), or None when the payload has all that is needed.

    Rules whose conditions can be decided on the payload alone and fail add nothing.
    `write_fields`: what a write of an item must start from in the API's dialect (today's
    replaces whole locales, so the item's complete `items`): fetched, never taken from the
    payload, whenever a rule may change the item."""
    event = str(envelope.get("event") or "")
    resource = resource_kind(canonical(event))
    payload = _payload(envelope)
    item_id = plain_id(payload.get("id"))
    if resource not in RESOURCE_PATHS or not item_id or event.endswith(".deleted"):
        return None
    ctx = Context(payload, dict(envelope), snapshot)
    wanted: set[str] = set()
    forced: set[str] = set()
    rule_ids: list[str] = []
    for rule in ruleset.rules_for(event):
        cond = rule.condition_needs(resource)
        if rule.when is not None and "*" not in cond and cond <= payload.keys():
            if not evaluate_condition(rule.when, ctx)["outcome"]:
                continue
        needs = set(rule.needs(resource))
        if write_fields and resource == "publication" and any(a.per_item for a in rule.actions):
            needs |= set(write_fields)
            forced |= set(write_fields)
        if needs:
            wanted |= needs
            rule_ids.append(rule.id)
    missing = sorted(k for k in wanted if k == "*" or k not in payload or k in forced)
    if not missing:
        return None
    return FetchPlan(resource, item_id, tuple(sorted(wanted)), tuple(missing), tuple(rule_ids))


def evaluate(ruleset: Any, envelope: Mapping, item: dict | None = None, *, snapshot: dict | None = None,
             last_fired: Mapping[str, float] | None = None, channels: Sequence[dict] | None = (),
             now: Any = None) -> Evaluation:
    """Match, explain and plan one event. Never raises for rule problems: they are in the result."""
    envelope = dict(envelope)
    event = str(envelope.get("event") or "")
    resource = resource_kind(canonical(event))
    payload = _payload(envelope)
    item = item if isinstance(item, dict) else payload
    item_id = plain_id(item.get("id") or payload.get("id"))
    clock = _now(now)
    ctx = Context(item, envelope, snapshot)
    deleted = event.endswith(".deleted")
    base = dict(item=item, envelope=envelope, resource=resource, item_id=item_id,
                locales=locales_of(item), channels=channels, encode_filter=ruleset.encode_filter)
    live, live_rules = Draft(item), []
    dry: list[tuple[str, list]] = []
    calls: list[PlannedCall] = []
    results: list[RuleResult] = []
    fired: list[str] = []
    stopped_by = None
    for rule in ruleset.rules_for(event):
        if stopped_by:
            results.append(RuleResult(rule.id, "stopped", False, errors=(), rendered=({"stopped_by": stopped_by},)))
            continue
        tree = evaluate_condition(rule.when, ctx) if rule.when is not None else None
        common = dict(condition=tree, dry_run=rule.dry_run, stop=rule.stop)
        if tree is not None and not tree["outcome"]:
            results.append(RuleResult(rule.id, "not_matched", False, **common))
            continue
        if rule.stop:
            stopped_by = rule.id
        last = (last_fired or {}).get(rule.id)
        if rule.throttle_seconds and last is not None and clock.timestamp() - float(last) < rule.throttle_seconds:
            note = {"throttled": {"last_fired": last, "once_within": rule.throttle_seconds}}
            results.append(RuleResult(rule.id, "throttled", True, rendered=(note,), **common))
            continue
        template_context = {"item": item, "event": envelope, "now": clock,
                            "rule": {"id": rule.id, "description": rule.description}}
        pctx = PlanContext(template_context=template_context, rule_id=rule.id, **base)
        ops, rendered, errors = [], [], []
        for action in rule.actions:
            try:
                if deleted and action.per_item:
                    raise ActionError("the item was deleted; per-item actions cannot apply")
                action_ops, shown = action.plan(pctx)
            except ActionError as exc:
                errors.append(f"{action.name}: {exc}")
                continue
            ops.extend(action_ops)
            rendered.append({"action": action.name, **shown})
        if errors:
            results.append(RuleResult(rule.id, "error", True, tree, tuple(rendered), tuple(errors),
                                      rule.dry_run, rule.stop))
            continue
        item_ops = [op for op in ops if not isinstance(op, PlannedCall)]
        for call in (op for op in ops if isinstance(op, PlannedCall)):
            calls.append(_with(call, dry_run=rule.dry_run))
        if rule.dry_run:
            dry.append((rule.id, item_ops))
        elif item_ops:
            for op in item_ops:
                live.apply(op)
            live_rules.append(rule.id)
        fired.append(rule.id)
        results.append(RuleResult(rule.id, "fired", True, tree, tuple(rendered), (), rule.dry_run, rule.stop))
    plan: list[PlannedCall] = []
    body = live.put_body() if item_id and resource in RESOURCE_PATHS else None
    if body:
        plan.append(PlannedCall("PUT", resource_path(resource, item_id), None, body, "rest", "celery",
                                tuple(live_rules), "put"))
    for rule_id, item_ops in dry:
        draft = Draft(item)
        for op in item_ops:
            draft.apply(op)
        dry_body = draft.put_body() if item_id and resource in RESOURCE_PATHS else None
        if dry_body:
            plan.append(PlannedCall("PUT", resource_path(resource, item_id), None, dry_body, "rest",
                                    "celery", (rule_id,), "put", dry_run=True))
    plan.extend(calls)
    after = apply_put(item, body) if body else item
    new_snapshot = dict(snapshot or {})
    for f in ruleset.changed_fields(event):
        new_snapshot[f.name] = fingerprint(f.get(after, envelope), f.kind)
    return Evaluation(event, resource, item_id, tuple(results), tuple(plan), tuple(fired), new_snapshot)


def _with(call: PlannedCall, dry_run: bool) -> PlannedCall:
    return replace(call, dry_run=True) if dry_run else call
