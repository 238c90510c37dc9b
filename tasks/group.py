"""One fetch and one merged plan for the events of a run, each evaluated with its own envelope.

Events are evaluated in arrival order over one item: each sees the item as the previous ones'
changes leave it, the snapshot they leave (so `changed` compares with the event before) and
their firings (so a throttled rule fires once per window, not once per event). Their item
changes become one PUT body; their other calls (track_event, trigger_webhooks, bulk) stay
theirs, sent once per event (tasks.execute). A run of one event is planned exactly as before
coalescing existed.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from automation import PlannedCall, evaluate
from automation.calls import FetchPlan
from automation.draft import apply_put, deep_merge
from prepr.errors import PreprError

if TYPE_CHECKING:
    from automation import RuleSet

    from .runs import EventPart, Run
    from .runtime import Runtime


# What today's API needs to write an item: each locale it names is replaced, so the whole item.
WRITE_FIELDS = ("items", "locales", "status")


@dataclass
class RunPlan:
    put: PlannedCall | None
    effects: list[tuple[EventPart, PlannedCall]] = field(default_factory=list)
    snapshot: dict[str, Any] = field(default_factory=dict)
    throttled: list[str] = field(default_factory=list)
    item: dict[str, Any] | None = None  # the item as fetched: what a complete-locale write merges into


def merged_fetch(plans: list[FetchPlan | None]) -> FetchPlan | None:
    """The one GET that serves every event's fetch plan (the union of their fields)."""
    wanted = [p for p in plans if p is not None]
    if not wanted:
        return None
    if len(wanted) == 1:
        return wanted[0]
    fields = {f for p in wanted for f in p.fields}
    union = lambda attr: tuple(sorted({x for p in wanted for x in getattr(p, attr)}))  # noqa: E731
    return replace(wanted[0], fields=("*",) if "*" in fields else tuple(sorted(fields)),
                   missing=union("missing"), rule_ids=union("rule_ids"))


def plan_run(rt: Runtime, run: Run, rule_sets: list[RuleSet | None], snapshot: dict[str, Any] | None,
             last_fired: dict[str, float]) -> RunPlan:
    parts = run.parts

    def plans(write_fields: tuple[str, ...]) -> list[FetchPlan | None]:
        return [rules.fetch_plan(p.envelope, snapshot=snapshot, write_fields=write_fields)
                if rules is not None else None for p, rules in zip(parts, rule_sets)]

    # the dialect is asked only when Prepr will be called anyway (a run decided on payloads calls nobody)
    fetches = plans(WRITE_FIELDS)
    if any(fetches) and not rt.api.dialect.full_locale_put:
        fetches = plans(())
    fetch = merged_fetch(fetches)
    item = None
    if fetch is not None:
        item = rt.api.get_resource(fetch.resource, fetch.id, fetch.field_list)
        if not isinstance(item, dict) or "id" not in item:
            raise PreprError("unexpected answer: not a resource object", status=200, method="GET",
                             path=fetch.path, body_excerpt=str(item)[:200], retryable=True)
        run.fetched = {**fetch.to_json(), "path": rt.api.resource_path(fetch.resource, fetch.id)[0]}
    now = time.time()
    fired = dict(last_fired)
    plan = RunPlan(None, snapshot=dict(snapshot or {}), item=item)
    body: dict[str, Any] = {}
    put_rules: list[str] = []
    current = snapshot
    for part, rules, own_fetch in zip(parts, rule_sets, fetches):
        if rules is None:
            part.outcome = "ignored: the backfilled rule no longer listens to this event"
            continue
        event = str(part.envelope["event"])
        base = item if own_fetch is not None else None
        if body:  # the changes of the events before this one, as the PUT will leave the item
            payload = part.envelope.get("payload")
            base = apply_put(base if base is not None else (payload if isinstance(payload, dict) else {}), body)
        evaluation = evaluate(rules, part.envelope, base, snapshot=current, last_fired=fired,
                              channels=rt.channels() if rules.needs_channels(event) else None, now=now)
        part.evaluation = evaluation.to_json()
        for call in evaluation.plan:
            if call.kind == "put" and not call.dry_run:
                body = deep_merge(body, call.body)
                put_rules.extend(call.rule_ids)
                plan.put = call
                part.planned.append({**call.to_json(), "sent": False, "merged": len(parts) > 1})
            else:
                plan.effects.append((part, call))
        current = evaluation.snapshot
        for rule_id in evaluation.fired:
            if getattr(rules.get(rule_id), "throttle_seconds", None):
                fired[rule_id] = now
                if rule_id not in plan.throttled:
                    plan.throttled.append(rule_id)
    if plan.put is not None:
        plan.put = replace(plan.put, body=body, rule_ids=tuple(dict.fromkeys(put_rules)))
    plan.snapshot = dict(current or {})
    return plan
