"""Carrying out a plan, and the record of one run that becomes the trace.

Order matters for at-least-once delivery: the item's PUT goes first, then tracking calls, and
bulk jobs are handed to the `bulk` queue last, so a failure part-way retries with the PUT
already applied (re-planned as empty) rather than with bulk jobs queued twice.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from automation import PlannedCall
from prepr.client import CallRecord

from .itemstate import ItemState

if TYPE_CHECKING:
    from .runtime import Runtime

RESOURCES = {"content_item": "publication", "publication": "publication", "asset": "asset", "person": "person"}
_ORDER = {"put": 0, "track_event": 1}


class LoopSuspected(Exception):
    def __init__(self, item: str, writes: int, window: int, rule_ids: list[str]) -> None:
        super().__init__(f"{item} was written by the automation {writes} times within {window}s")
        self.rule_ids = rule_ids


def resource_of(envelope: dict[str, Any]) -> tuple[str, str | None]:
    family = str(envelope.get("event", "")).split(".", 1)[0]
    payload = envelope.get("payload") or {}
    item_id = payload.get("id") if isinstance(payload, dict) else None
    return RESOURCES.get(family, family), (str(item_id) if item_id else None)


class Run:
    """What one attempt at one event did, for the trace."""

    def __init__(self, envelope: dict[str, Any], attempt: int, replay_of: str | None, redelivered: bool) -> None:
        self.started = time.time()
        self.attempt = attempt
        self.replay_of = replay_of
        self.redelivered = redelivered
        self.event = envelope.get("event")
        self.fetched: dict[str, Any] | None = None
        self.evaluation: dict[str, Any] | None = None
        self.calls: list[dict[str, Any]] = []
        self.planned: list[dict[str, Any]] = []
        self.current_rules: list[str] = []
        self.error: dict[str, Any] | None = None
        self.traced = False  # written together with the item's state (tasks.events)
        self.outcome = ""
        self.elapsed_ms = 0.0

    def on_call(self, record: CallRecord) -> None:
        self.calls.append({"method": record.method, "path": record.path, "status": record.status,
                           "ms": round(record.elapsed_ms, 1), **({"error": record.error} if record.error else {})})

    @property
    def last_request(self) -> dict[str, Any] | None:
        return {k: self.calls[-1][k] for k in ("method", "path")} if self.calls else None

    def finish(self, outcome: str) -> None:
        self.outcome = outcome
        self.elapsed_ms = round((time.time() - self.started) * 1000, 1)

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if k not in ("current_rules", "traced")}


def execute_plan(rt: Runtime, plan: tuple[PlannedCall, ...], state: ItemState, run: Run,
                 envelope: dict[str, Any]) -> str:
    from .bulk import run_bulk  # the bulk task module imports this one

    sent = planned = 0
    for call in sorted(plan, key=lambda c: _ORDER.get(c.kind, 2)):
        entry = call.to_json()
        run.planned.append(entry)
        planned += 1
        if call.dry_run or rt.settings.dry_run:
            entry["sent"] = False
            continue
        run.current_rules = list(call.rule_ids)
        if call.queue == "bulk":
            result = run_bulk.apply_async(args=[entry, str(envelope["id"])], queue="bulk")
            entry["bulk_task"] = result.id
        elif call.kind == "put":
            if state.loop_suspected():
                raise LoopSuspected(state.item_id, state.recent_writes(), state.loop_window, list(call.rule_ids))
            rt.api.request(call.method, call.path, params=call.params, json=call.body)
            state.record_write()
        else:
            base = rt.api.tracking_url if call.api == "tracking" else None
            rt.api.request(call.method, call.path, params=call.params, json=call.body, base_url=base,
                           expect_json=False)
        entry["sent"] = True
        sent += 1
    if not planned:
        matched = any(r.get("matched") for r in (run.evaluation or {}).get("rules", []))
        return "no change" if matched else "no rule matched"
    if not sent:
        return f"dry run: {planned} call(s) planned, none sent"
    return f"done: {sent} call(s) sent"
