"""Item titles for the event list: an operator looks for "Late winner", not for a uuid.

Newer Prepr deliveries carry ids and timestamps only, so a title comes from the stored envelope
when it has one (older deliveries: `body`, `title`, the items' `title`), else from Prepr: read once
per item with the web's PREPR_ACCESS_TOKEN, within the token's shared rate limit (never waiting for
a slot the worker needs), kept in Redis for an hour (an edited title shows within the hour). A page
view reads at most FETCHES items and waits at most DEADLINE seconds for them; the rows it did not
reach show the id alone, and get their title on a later view. Without a token the list shows what
the envelopes hold.
"""
from __future__ import annotations

import time
from typing import Any, Iterable

import redis

from prepr_automation import compact
from prepr_automation.connect import prepr_client
from prepr.errors import PreprError, PreprNotFound
from prepr_automation.settings import Settings
from prepr_automation.store import PREFIX, trace_key

from .explain import BudgetBusy, page_limiter

FETCHES, DEADLINE, TTL = 10, 1.5, 3600


def _key(item: str) -> str:
    return f"{PREFIX}console:title:{item}"


def title_of(doc: Any) -> str | None:
    """The title of a Prepr resource or payload: the first locale's `title`, else `title`/`body`/`name`."""
    if not isinstance(doc, dict):
        return None
    items = doc.get("items")
    if isinstance(items, dict):
        for fields in items.values():
            title = (fields or {}).get("title") if isinstance(fields, dict) else None
            body = title.get("body") if isinstance(title, dict) else title
            if isinstance(body, str) and body.strip():
                return body.strip()
    for name in ("title", "body", "name"):
        if isinstance(doc.get(name), str) and doc[name].strip():
            return doc[name].strip()
    return None


def titles(client: redis.Redis, settings: Settings, rows: Iterable[Any]) -> dict[str, str]:
    """{item id: title} for the rows' content items (rows have .id, .event and .item)."""
    rows = [row for row in rows if row.item and str(row.event).startswith(("content_item.", "publication."))]
    if not rows:
        return {}
    with client.pipeline(transaction=False) as pipe:
        for row in rows:
            pipe.get(_key(row.item))
            pipe.hget(trace_key(row.id), "envelope")
        answers = pipe.execute()
    found: dict[str, str] = {}
    for row, cached, envelope in zip(rows, answers[::2], answers[1::2]):
        if cached is not None:
            found[row.item] = cached.decode()
        elif envelope and row.item not in found:
            title = title_of((compact.loads(envelope) or {}).get("payload"))
            if title:
                found[row.item] = title
    missing = list(dict.fromkeys(row.item for row in rows if row.item not in found))[:FETCHES]
    if missing and settings.access_token:
        found.update(_fetch(client, settings, missing))
    return {item: title for item, title in found.items() if title}


def _fetch(client: redis.Redis, settings: Settings, items: list[str]) -> dict[str, str]:
    api = prepr_client(settings, client, page_limiter(client, settings, max_wait=0.2),
                       timeout=(1.0, 2.0))  # the worker's calls first
    deadline, got = time.monotonic() + DEADLINE, {}
    try:
        for item in items:
            if time.monotonic() > deadline:
                break
            try:
                got[item] = title_of(api.get_item(item, fields="items")) or ""
            except PreprNotFound:
                got[item] = ""  # deleted since: remembered too, so it is not asked for again at every view
            except (PreprError, redis.RedisError, BudgetBusy):
                break  # Prepr slow or refusing, or the budget busy: the ids stay, the page does not wait
    finally:
        api.close()
    if got:
        with client.pipeline(transaction=False) as pipe:
            for item, title in got.items():
                pipe.set(_key(item), title, ex=TTL)
            pipe.execute()
    return got
