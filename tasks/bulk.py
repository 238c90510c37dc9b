"""Bulk work on its own queue (`bulk`), so it never delays event processing.

bulk_put / bulk_delete first list what the filter matches (every page, stopping as soon as
more than max_items match): above max_items the job is refused and dead-lettered; otherwise
the matched items are backed up (id in the trace and the log) before the bulk call. Today's
API has no bulk endpoints: there the listing is followed by one PUT (complete locales, merged
into the listed item) or DELETE per item through the shared limiter, each recorded as done so
a retry or redelivery resumes where the last attempt stopped. It has no bulk webhooks either:
trigger_webhooks is a dead letter that names the dialect.
"""
from __future__ import annotations

import logging
from typing import Any

from prepr.dialects import Unsupported

from . import backups
from .celery_app import app
from .deadletters import DeadLetter
from .execute import Effects
from .poison import GuardedRequest
from .policy import Unprocessable, letter_fields, settle
from .runs import Run, run_of
from .runtime import runtime

log = logging.getLogger("tasks.bulk")
DEFAULT_MAX_ITEMS = 100
# What a backup asks Prepr for: enough to put values back or to create the item again.
_BACKUP_FIELDS = {"items", "channels", "model", "locales", "status", "publish_on", "tags"}


@app.task(name="tasks.run_bulk", bind=True, max_retries=None, Request=GuardedRequest)
def run_bulk(self, call: dict[str, Any], event_id: str, replay_of: str | None = None, again: bool = False,
             unprocessable: str | None = None) -> str:
    """`again`: a replay a person asked for repeats a bulk call that was already sent;
    `unprocessable`: why the message cannot be handled (tasks.poison): dead-lettered at once."""
    rt = runtime()
    kind = call["kind"]
    rule_id = ",".join(call.get("rule_ids") or []) or None
    redelivered = bool((self.request.delivery_info or {}).get("redelivered"))
    with run_of(rt, self.request.retries + 1, replay_of, redelivered, again) as run:
        run.add({"id": event_id, "event": kind})
        run.field = f"bulk:{kind}:{rule_id}"
        run.details = {"kind": kind, "rule_id": rule_id, "path": call["path"]}
        run.current_rules = list(call.get("rule_ids") or [])

        def letters(reason: str, error: str, exc: Any) -> list[DeadLetter]:
            return [DeadLetter(event_id=event_id, reason=reason, task="tasks.run_bulk", args=[call, event_id],
                               **letter_fields(run, error, exc))]
        try:
            if unprocessable:
                raise Unprocessable(unprocessable)
            run.finish(_run(rt, call, event_id, rule_id, run))
        except Exception as exc:
            run.finish(settle(self, rt, exc, run, letters))
    return run.outcome


def _run(rt: Any, call: dict[str, Any], event_id: str, rule_id: str | None, run: Run) -> str:
    meta, record = call.get("meta") or {}, run.details
    done = Effects(rt.redis, [event_id])
    key = f"{call['kind']}:{rule_id}:call"
    if done.done(event_id, key) and not run.again:
        return "already done: not sent again"
    if call["kind"] in ("bulk_put", "bulk_delete"):
        max_items = int(meta.get("max_items") or DEFAULT_MAX_ITEMS)
        fields = sorted(_BACKUP_FIELDS | set(call.get("body") or {}))
        items = list(rt.api.list_items(filter=meta.get("filter"), fields=fields, limit=max_items + 1))
        record["matched"] = len(items) if len(items) <= max_items else f"more than {max_items}"
        if len(items) > max_items:
            letter = rt.dead.add(DeadLetter(
                event_id=event_id, reason=f"bulk refused: more than max_items ({max_items}) match",
                task="tasks.run_bulk", args=[call, event_id], rule_id=rule_id,
                request={"method": call["method"], "path": call["path"]}))
            log.warning("bulk %s for event %s refused: more than %d items match [letter %s]",
                        call["kind"], event_id, max_items, letter)
            return f"refused: more than {max_items} items match (letter {letter})"
        if not items:
            return "nothing matched: no bulk call sent"
        backup_id = backups.save(rt.redis, kind=call["kind"], event_id=event_id, rule_id=rule_id,
                                 filter=meta.get("filter"), body=call.get("body"), items=items)
        record["backup_id"] = backup_id
        log.info("bulk %s for event %s: %d items backed up as %s", call["kind"], event_id, len(items), backup_id)
    else:
        items = []
    if rt.api.dialect.bulk:
        rt.api.request(call["method"], call["path"], params=call.get("params"), json=call.get("body"))
    elif call["kind"] == "trigger_webhooks":
        raise Unsupported("trigger_webhooks (bulk webhooks)", rt.api.dialect)
    else:
        _each(rt, call, items, done, event_id, f"{key}:item", record)
    done.record(event_id, key)
    return "done" if rt.api.dialect.bulk else f"done: {record['done']} item(s), one call each"


def _each(rt: Any, call: dict[str, Any], items: list[dict[str, Any]], done: Effects, event_id: str,
          key: str, record: dict[str, Any]) -> None:
    """The bulk call item by item (today's API): each one recorded, so a retry resumes."""
    record["done"] = 0
    for item in items:
        item_key = f"{key}:{item['id']}"
        if not done.done(event_id, item_key):
            if call["kind"] == "bulk_put":
                rt.api.write_item(item["id"], call.get("body") or {}, current=item)
            else:
                rt.api.delete_item(item["id"])
            done.record(event_id, item_key)
        record["done"] += 1
        if record["done"] % 25 == 0:
            log.info("bulk %s for event %s: %d of %d items", call["kind"], event_id, record["done"], len(items))

