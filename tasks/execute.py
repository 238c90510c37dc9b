"""Carrying out a run's plan: the one merged PUT, then each event's own effects, once.

Order matters for at-least-once delivery: the item's PUT goes first, then tracking calls, and
bulk jobs are handed to the `bulk` queue last, so a failure part-way retries with the PUT
already applied (re-planned as empty) rather than with bulk jobs queued twice.

Effects are not idempotent (a tracked event counts twice if sent twice), so each one sent is
recorded in the store with its event (`pa:effects:<event id>`, kind + rules + ordinal) and
skipped by any later retry, re-delivery or replay of that event; a replay asked for with
`again` sends them anyway. The record is written right after the call (deferred if the store
is down, and always before the item's lock is released, see tasks.deferred).

What a process killed between the call and its record leaves is decided per kind:
- `track_event` is AT MOST ONCE (a tracked event counts): an "in flight" mark is written, and
  must have reached the store, before the POST. A later attempt that finds the mark without the
  record does not send it: the effect is `unknown` in the trace and the outcome, and the
  console offers to send it (tasks.effects). An answer that proves the call was refused (4xx,
  429, 503) or a store error before the call clears the mark, so a retry sends it;
- bulk jobs and `trigger_webhooks` are AT LEAST ONCE: a job is queued again, a webhook fired
  again (both act on the item's current state, so a second run repeats, not doubles, the work).
"""
from __future__ import annotations

import time
from collections import Counter
from typing import TYPE_CHECKING, Any

import redis

from automation import PlannedCall
from automation.resources import FAMILIES
from prepr.errors import PreprError
from prepr_automation.store import PREFIX

from . import deferred
from .itemstate import ItemState

if TYPE_CHECKING:
    from .runs import EventPart, Run
    from .runtime import Runtime

EFFECTS_TTL = 30 * 24 * 3600
_ORDER = {"track_event": 0}
AT_MOST_ONCE = {"track_event"}  # effect kinds never sent twice, even after a crash (see above)
INFLIGHT = "|inflight"


class LoopSuspected(Exception):
    def __init__(self, item: str, writes: int, window: int, rule_ids: list[str]) -> None:
        super().__init__(f"{item} was written by the automation {writes} times within {window}s")
        self.rule_ids = rule_ids


def resource_of(envelope: dict[str, Any]) -> tuple[str, str | None]:
    family = str(envelope.get("event", "")).split(".", 1)[0]
    payload = envelope.get("payload") or {}
    item_id = payload.get("id") if isinstance(payload, dict) else None
    return FAMILIES.get(family, family), (str(item_id) if item_id else None)


class Effects:
    """The effects already sent for some events, as recorded in the store."""

    def __init__(self, client: redis.Redis, event_ids: list[str]) -> None:
        self.client = client
        with client.pipeline(transaction=False) as pipe:
            for event_id in event_ids:
                pipe.hgetall(effects_key(event_id))
            answers = pipe.execute() if event_ids else []
        self.sent = {e: {k.decode() for k in a} for e, a in zip(event_ids, answers)}

    def done(self, event_id: str, key: str) -> bool:
        return key in self.sent.get(event_id, set())

    def unknown(self, event_id: str, key: str) -> bool:
        """An earlier attempt began sending it and never recorded the answer."""
        return key + INFLIGHT in self.sent.get(event_id, set()) and not self.done(event_id, key)

    def begin(self, event_id: str, key: str) -> None:
        """Mark an at-most-once effect in flight; raises when the store cannot take the mark (not sent)."""
        name = effects_key(event_id)
        with self.client.pipeline(transaction=False) as pipe:
            pipe.hset(name, key + INFLIGHT, f"{time.time():.3f}").expire(name, EFFECTS_TTL).execute()

    def abandon(self, event_id: str, key: str) -> None:
        """The call was not sent (or refused): clear its mark, so a retry sends it."""
        name = effects_key(event_id)
        deferred.send(self.client, lambda pipe: pipe.hdel(name, key + INFLIGHT))

    def record(self, event_id: str, key: str) -> None:
        self.sent.setdefault(event_id, set()).add(key)
        name, at = effects_key(event_id), f"{time.time():.3f}"
        deferred.send(self.client, lambda pipe: (pipe.hset(name, key, at), pipe.expire(name, EFFECTS_TTL)))


def effects_key(event_id: str) -> str:
    return f"{PREFIX}effects:{event_id}"


def execute_plan(rt: Runtime, put: PlannedCall | None, effects: list[tuple[EventPart, PlannedCall]],
                 state: ItemState, run: Run, *, target: tuple[str, str] | None = None,
                 item: dict[str, Any] | None = None) -> dict[str, str]:
    """Send the plan; returns each event's outcome (by event id). `target` is the (resource,
    id) the PUT writes and `item` the item as fetched, which today's API needs to write whole
    locales (prepr.mutation)."""
    from .bulk import run_bulk  # the bulk task module imports this one

    sent: Counter[str] = Counter()
    planned: Counter[str] = Counter()
    skipped: Counter[str] = Counter()
    unknown: Counter[str] = Counter()
    dry = rt.settings.dry_run
    if put is not None:
        contributors = [p for p in run.parts if any(c.get("kind") == "put" for c in p.planned)]
        for part in contributors:
            planned[part.id] += 1
        if not dry:
            run.current_rules = list(put.rule_ids)
            if state.loop_suspected():
                raise LoopSuspected(state.item_id, state.recent_writes(), state.loop_window, list(put.rule_ids))
            path, named = _write(rt, put, target, item)
            state.record_write()
            for part in contributors:
                sent[part.id] += 1
                for entry in part.planned:
                    if entry.get("kind") == "put":
                        entry.update(sent=True, path=path, **named)
    record = Effects(rt.redis, [p.id for p in run.parts]) if effects and not dry else None
    ordinal: Counter[tuple[str, str]] = Counter()
    for part, call in sorted(effects, key=lambda pc: (_ORDER.get(pc[1].kind, 1), run.parts.index(pc[0]))):
        entry = call.to_json()
        part.planned.append(entry)
        planned[part.id] += 1
        if call.dry_run or dry or record is None:
            entry["sent"] = False
            continue
        name = f"{call.kind}:{','.join(call.rule_ids)}"
        ordinal[(part.id, name)] += 1
        key = f"{name}:{ordinal[(part.id, name)]}"
        if record.done(part.id, key) and not run.again:
            entry["sent"], entry["already_sent"] = False, True
            skipped[part.id] += 1
            continue
        if call.kind in AT_MOST_ONCE and record.unknown(part.id, key) and not run.again:
            entry["sent"], entry["unknown"], entry["effect_key"] = False, True, key
            unknown[part.id] += 1
            continue
        run.current_rules = list(call.rule_ids)
        if call.queue == "bulk":
            kwargs = {"again": True} if run.again else {}
            entry["bulk_task"] = run_bulk.apply_async(args=[entry, part.id], kwargs=kwargs, queue="bulk").id
        elif call.kind in AT_MOST_ONCE:
            record.begin(part.id, key)
            _send_once(rt, call, record, part.id, key)
        else:
            base = rt.api.tracking_url if call.api == "tracking" else None
            rt.api.request(call.method, call.path, params=call.params, json=call.body, base_url=base,
                           expect_json=False)
        record.record(part.id, key)
        entry["sent"] = True
        sent[part.id] += 1
    return {p.id: _outcome(p, planned[p.id], sent[p.id], skipped[p.id], unknown[p.id]) for p in run.parts}


def _write(rt: Runtime, put: PlannedCall, target: tuple[str, str] | None,
           item: dict[str, Any] | None) -> tuple[str, dict[str, Any]]:
    """The item's one write in the API's dialect; (the path written, what the trace adds)."""
    if target is None or target[0] != "publication":
        resource, item_id = target or ("", "")
        path, base = rt.api.resource_path(resource, item_id) if target else (put.path, None)
        rt.api.request(put.method, path, params=put.params, json=put.body, base_url=base)
        return path, {}
    mutation = rt.api.mutation(put.body, item)
    rt.api.send(target[1], mutation)
    named: dict[str, Any] = {}
    if mutation.body is not None and rt.api.dialect.full_locale_put:
        named["locales_sent"] = mutation.body["locales"]
    if mutation.transitions:
        named["transitions"] = [f"{locale}: {verb}" for locale, verb in mutation.transitions]
    return rt.api.item_path(target[1]), named


def _send_once(rt: Runtime, call: PlannedCall, record: Effects, event_id: str, key: str) -> None:
    """Send an at-most-once effect whose mark is in flight; clear the mark when it surely did not land."""
    base = rt.api.tracking_url if call.api == "tracking" else None
    try:
        rt.api.request(call.method, call.path, params=call.params, json=call.body, base_url=base,
                       expect_json=False)
    except redis.RedisError:  # the rate limiter, before anything was sent
        record.abandon(event_id, key)
        raise
    except PreprError as exc:
        if exc.status is not None and (400 <= exc.status < 500 or exc.status == 503):
            record.abandon(event_id, key)
        raise


def _outcome(part: EventPart, planned: int, sent: int, skipped: int, unknown: int = 0) -> str:
    if not planned:
        matched = any(r.get("matched") for r in (part.evaluation or {}).get("rules", []))
        return "no change" if matched else "no rule matched"
    note = f"{unknown} unknown (in flight when an earlier attempt stopped, not resent)" if unknown else ""
    if (skipped or unknown) and not sent:
        return "no change: " + ", ".join(filter(None, [f"{skipped} effect(s) already sent" if skipped else "", note]))
    if not sent:
        return f"dry run: {planned} call(s) planned, none sent"
    return f"done: {sent} call(s) sent" + "".join(f", {text}" for text in (
        f"{skipped} already sent" if skipped else "", note) if text)
