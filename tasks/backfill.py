"""`prepr-automation backfill RULE_ID`: run one rule over the content that already exists.

Each listed item becomes one synthetic event on the `bulk` queue, processed by the ordinary event
task, so a backfilled item is fetched, evaluated, written and traced exactly like a live one.
Decisions, and why:

* Only the target rule runs (the envelope's `backfill.rule`, see `scoped`), behind copies of the
  `stop:` guards that precede it with their actions removed: an item an editor opted out of
  automation stays untouched, and no other rule fires as a side effect. The marker rides in
  the envelope rather than a task option because the envelope is what retries, dead letters
  and replays keep.
* The rule's `when` becomes the Prepr listing filter where Prepr can express it (an AND of
  plain field conditions); `matches`, `changed`, `any:`, `not:` and resource paths are left to
  the worker, which evaluates the whole rule anyway. The filter only narrows the listing.
* Resume: every enqueued item id goes into a set per run (`pa:backfill:<rule>:<args hash>`),
  in the same script call that pushes its message (tasks.messages, shared with the door), so a
  kill at any instant leaves no item enqueued-but-unrecorded: a re-run with the same arguments
  skips exactly what was sent.
* The whole listing (ids only, oldest first) is read before anything is enqueued: the worker
  changes items as we go, and paging a filtered list while its members change skips some.
* Back-pressure: at most `--window` jobs wait on the queue, so the progress bar follows the
  work, live events are not stuck behind thousands of jobs, and Ctrl-C stops the backfill.
"""
from __future__ import annotations

import hashlib
import json
import secrets
import time
import uuid
from dataclasses import replace
from typing import Any, Mapping

from automation import RuleSet
from automation.conditions import Group
from automation.events import canonical, is_glob, resource_kind
from prepr.filters import UnsupportedFilter, encode_filter
from prepr_automation import store
from tasks.messages import BULK_QUEUE, Enqueue

QUEUE = BULK_QUEUE
CURSOR_TTL = 30 * 24 * 3600
EVENTS = ("content_item.changed", "content_item.published", "content_item.created", "content_item.unpublished")


def scoped(rules: RuleSet, envelope: Mapping[str, Any]) -> RuleSet | None:
    """The rules a backfill event runs: the preceding stop-guards (no actions) and its rule.

    None when that rule no longer listens to the event (removed, disabled or edited since)."""
    rule_id = (envelope.get("backfill") or {}).get("rule")
    listening = rules.rules_for(str(envelope["event"]))
    position = next((n for n, rule in enumerate(listening) if rule.id == rule_id), None)
    if position is None:
        return None
    guards = [replace(rule, actions=()) for rule in listening[:position] if rule.stop]
    return RuleSet((*guards, listening[position]), rules.files, encode_filter=rules.encode_filter)


def backfill_event(rule: Any) -> str | None:
    """The event name a backfill job carries: `content_item.changed` when the rule listens to it
    (an existing item is what a change event describes), else the rule's first exact
    content-item event, else the first usual one its patterns match; never `deleted`."""
    alone = RuleSet((replace(rule, enabled=True),), ())
    exact = [canonical(p) for p in rule.on if not is_glob(p)]
    for name in [EVENTS[0], *exact, *EVENTS]:
        if resource_kind(name) == "publication" and not name.endswith(".deleted") and alone.listens_to(name):
            return name
    return None


def rule_filter(node: Any) -> tuple[list[dict[str, Any]], list[str]]:
    """(conditions Prepr can filter on, one mapping each; what is left to the worker, said plainly)."""
    parts: list[dict[str, Any]] = []
    left: list[str] = []

    def walk(node: Any) -> None:
        if node is None:
            return
        if isinstance(node, Group):
            if node.kind == "all":
                for child in node.children:
                    walk(child)
            else:
                left.append(f"'{node.kind}:' (Prepr filters only AND)")
            return
        condition: dict[str, Any] = {node.op.name: node.expected}
        if node.param:
            condition["param"] = node.param
        part = {node.field.name: condition}
        try:
            encode_filter(part)
        except UnsupportedFilter as exc:
            reason = exc.reason.split(": ", 1)[-1] if exc.reason.startswith("operator") else exc.reason
            left.append(f"{node.field.name} {node.op.name} ({reason.split(' (')[0]})")
            return
        parts.append(part)

    walk(node)
    return parts, left


def listing_filter(rule_parts: list[dict[str, Any]], user: Mapping[str, Any] | None,
                   left: list[str]) -> dict[str, Any]:
    """AND of the rule's filterable conditions and --filter. Where both constrain a field Prepr
    takes once (model, status), --filter wins and the rule's condition goes to the worker."""
    extra = [dict(user)] if user else []
    encode_filter({"all": extra})  # a bad --filter is the operator's error: let it raise
    parts = list(rule_parts)
    while True:
        try:
            encode_filter({"all": parts + extra})
            return {"all": parts + extra} if parts or extra else {}
        except UnsupportedFilter as exc:
            clash = [p for p in parts if exc.field in p]
            if not clash:
                raise
            parts = [p for p in parts if exc.field not in p]
            left.append(f"{exc.field} (--filter sets it too)")


class Cursor:
    """One backfill run's memory in Redis: which items were enqueued, under which run id."""

    def __init__(self, redis: Any, rule_id: str, user_filter: Mapping[str, Any] | None) -> None:
        digest = hashlib.sha1(json.dumps(user_filter or {}, sort_keys=True).encode()).hexdigest()[:12]
        self.redis, self.key = redis, f"{store.PREFIX}backfill:{rule_id}:{digest}"
        self.ids_key = self.key + ":ids"
        self._enqueue = Enqueue(redis)

    def open(self, restart: bool, create: bool) -> tuple[str, int]:
        """(run id, items already enqueued); a fresh run id when new or restarted."""
        if restart and create:
            self.redis.delete(self.key, self.ids_key)
        run = self.redis.hget(self.key, "run")
        if run is not None:
            return run.decode(), int(self.redis.scard(self.ids_key))
        run_id = secrets.token_hex(4)
        if create:
            self.redis.delete(self.ids_key)  # ids without their run (should not be): not this run's
            self.redis.hset(self.key, mapping={"run": run_id, "started_at": time.time()})
            self.redis.expire(self.key, CURSOR_TTL)
        return run_id, 0

    def seen(self, ids: list[str]) -> list[bool]:
        if not ids:
            return []
        return [bool(x) for x in self.redis.smismember(self.ids_key, ids)]

    def enqueue(self, event_id: str, item_id: str, message: bytes, record: str, seen_ttl: int,
                trace_ttl: int) -> bool:
        """Push one item's job with the queue's shared script; the item joins this run's set in the
        same call (the cursor's TTL is refreshed with it, so a killed run is remembered too)."""
        landed = self._enqueue(event_id, uuid.uuid4().hex, message, record, queue=QUEUE, seen_ttl=seen_ttl,
                               trace_ttl=trace_ttl, member=item_id, member_keys=(self.ids_key, self.key),
                               member_ttl=CURSOR_TTL)
        return landed != "duplicate"

    def close(self, finished: bool) -> None:
        fields: dict[str, Any] = {"updated_at": time.time(), "enqueued": self.redis.scard(self.ids_key)}
        if finished:
            fields["finished_at"] = time.time()
        self.redis.hset(self.key, mapping=fields)
        self.redis.expire(self.key, CURSOR_TTL)
        self.redis.expire(self.ids_key, CURSOR_TTL)
