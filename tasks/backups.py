"""Backups taken before every bulk put / bulk delete, and `restore`, which undoes them.

A backup holds the full items the filter matched at the time, so a bulk put is undone by
putting back the original values of exactly the keys it set, and a bulk delete by creating the
items again (Prepr gives them new ids; restore reports the mapping). Kept in the store for
BACKUP_DAYS, so they survive a platform's ephemeral disk.
"""
from __future__ import annotations

import json
import time
import uuid
from typing import Any, Callable

import redis

from prepr.client import PreprClient
from prepr_automation.store import PREFIX

BACKUP_DAYS = 30
# Read-only keys Prepr computes itself: never sent back when re-creating an item.
_SERVER_KEYS = {"id", "created_on", "changed_on", "last_published_on", "read_time", "version", "_meta"}


def _key(backup_id: str) -> str:
    return f"{PREFIX}backup:{backup_id}"


def save(client: redis.Redis, *, kind: str, event_id: str, rule_id: str | None,
         filter: dict[str, Any] | None, body: dict[str, Any] | None, items: list[dict[str, Any]]) -> str:
    backup_id = f"bk-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    record = {"id": backup_id, "kind": kind, "event_id": event_id, "rule_id": rule_id,
              "filter": filter, "body": body, "items": items, "at": time.time()}
    client.set(_key(backup_id), json.dumps(record), ex=BACKUP_DAYS * 24 * 3600)
    return backup_id


def load(client: redis.Redis, backup_id: str) -> dict[str, Any] | None:
    raw = client.get(_key(backup_id))
    return json.loads(raw) if raw else None


def project(item: Any, shape: Any) -> Any:
    """The part of `item` that has the shape of `shape` (the bulk put body): what to put back."""
    if isinstance(shape, dict) and isinstance(item, dict):
        return {k: project(item.get(k), v) for k, v in shape.items()}
    return item


def restore(record: dict[str, Any], api: PreprClient,
            progress: Callable[[str, str], None] = lambda old, new: None) -> dict[str, str]:
    """Undo one bulk action; returns old id → id after restore (new ids for re-created items)."""
    done: dict[str, str] = {}
    for item in record["items"]:
        if record["kind"] == "bulk_put":
            # today's API writes whole locales: merged into the item as it is now, not as it was
            current = api.get_item(item["id"]) if api.dialect.full_locale_put else None
            api.write_item(item["id"], project(item, record["body"] or {}), current=current)
            done[item["id"]] = item["id"]
        else:
            created = api.create_item({k: v for k, v in item.items() if k not in _SERVER_KEYS})
            done[item["id"]] = created.get("id", "")
        progress(item["id"], done[item["id"]])
    return done
