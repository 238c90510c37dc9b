"""Bulk work on its own queue (`bulk`), so it never delays event processing.

bulk_put / bulk_delete first list what the filter matches (every page, stopping as soon as
more than max_items match): above max_items the job is refused and dead-lettered; otherwise
the matched items are backed up (id in the trace and the log) before the one bulk call.
"""
from __future__ import annotations

import logging
from typing import Any

from prepr.errors import PreprError

from . import backups
from .celery_app import app
from .deadletters import DeadLetter
from .retry import countdown
from .runtime import runtime

log = logging.getLogger("tasks.bulk")
DEFAULT_MAX_ITEMS = 100
# What a backup asks Prepr for: enough to put values back or to create the item again.
_BACKUP_FIELDS = {"items", "channels", "model", "locales", "status", "publish_on", "tags"}


@app.task(name="tasks.run_bulk", bind=True, max_retries=None)
def run_bulk(self, call: dict[str, Any], event_id: str, replay_of: str | None = None) -> str:
    rt = runtime()
    kind, meta = call["kind"], call.get("meta") or {}
    rule_id = ",".join(call.get("rule_ids") or []) or None
    record: dict[str, Any] = {"kind": kind, "rule_id": rule_id, "path": call["path"], "attempt": self.request.retries + 1,
                              "replay_of": replay_of}
    calls: list[dict[str, Any]] = []
    listener = lambda r: calls.append({"method": r.method, "path": r.path, "status": r.status,  # noqa: E731
                                       "ms": round(r.elapsed_ms, 1)})
    rt.api.add_listener(listener)
    try:
        record["outcome"] = _run(rt, call, event_id, rule_id, meta, record)
    except PreprError as exc:
        record["error"] = exc.to_dict()
        if exc.retryable and self.request.retries < rt.settings.task_max_retries:
            record["outcome"] = "retrying"
            _write(rt, event_id, kind, record, calls)
            raise self.retry(countdown=countdown(self.request.retries, exc.retry_after,
                                                 ceiling=max(1.0, rt.settings.visibility_timeout - 30)))
        letter = rt.dead.add(DeadLetter(
            event_id=event_id, reason="retries exhausted" if exc.retryable else "request refused",
            task="tasks.run_bulk", args=[call, event_id], rule_id=rule_id, attempts=self.request.retries + 1,
            request={"method": exc.method, "path": exc.path},
            response={"status": exc.status, "body_excerpt": exc.body_excerpt}, error=str(exc)))
        record["outcome"] = f"dead-lettered (letter {letter})"
    except Exception as exc:  # a bug, not bad input: keep the job for replay once fixed
        log.warning("bulk job for event %s failed unexpectedly", event_id, exc_info=True)
        letter = rt.dead.add(DeadLetter(event_id=event_id, reason="internal error", task="tasks.run_bulk",
                                        args=[call, event_id], rule_id=rule_id, error=f"{type(exc).__name__}: {exc}",
                                        attempts=self.request.retries + 1))
        record["outcome"] = f"dead-lettered (letter {letter})"
    finally:
        rt.api.remove_listener(listener)
    _write(rt, event_id, kind, record, calls)
    return record["outcome"]


def _run(rt: Any, call: dict[str, Any], event_id: str, rule_id: str | None, meta: dict[str, Any],
         record: dict[str, Any]) -> str:
    if call["kind"] in ("bulk_put", "bulk_delete"):
        max_items = int(meta.get("max_items") or DEFAULT_MAX_ITEMS)
        fields = sorted(_BACKUP_FIELDS | set(call.get("body") or {}))
        items = list(rt.api.list_publications(filter=meta.get("filter"), fields=fields, limit=max_items + 1))
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
    rt.api.request(call["method"], call["path"], params=call.get("params"), json=call.get("body"))
    return "done"


def _write(rt: Any, event_id: str, kind: str, record: dict[str, Any], calls: list[dict[str, Any]]) -> None:
    rt.traces.write(event_id, f"bulk:{kind}:{record.get('rule_id')}", {**record, "calls": calls})
