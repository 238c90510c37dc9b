"""The safety net of coalescing: events pending for an item whose claim is gone get a run.

A leader's claim is a lease (tasks.coalesce): a run killed, or one whose release was deferred
through a Redis outage, leaves its item's pending events with no claim within LEASE_MARGIN.
The next event of the item would lead them, but none may come. So the workers sweep the list
of items with pending events (coalesce.ITEMS) every few seconds (tasks.takeover): an item with
events and no claim is claimed for its oldest event and its run queued (`tasks.run_pending`,
which still waits out the window if it has not passed); an item with neither leaves the list.
One worker sweeps at a time (a short lock); a duplicate run would be harmless anyway (the item
lock orders runs, each reads what is pending under it).
"""
from __future__ import annotations

import logging
import time

import redis

from prepr_automation.store import PREFIX

from .coalesce import ITEMS, Pending

log = logging.getLogger("tasks.orphans")
SWEEP_LOCK = f"{PREFIX}coalesce:sweeping"
SETTLE = 1.0  # seconds an item is listed before the sweep looks at it
BATCH = 500  # items looked at per sweep


def _store() -> tuple[redis.Redis, float]:
    """The worker's own store client: the sweep's connections come out of the process's allowance."""
    from .runtime import runtime

    rt = runtime()
    return rt.redis, rt.settings.coalesce_seconds


def sweep(client: redis.Redis | None = None, window: float | None = None) -> list[str]:
    """Queue a run for every listed item whose events wait with no claim; returns those items."""
    if client is None or window is None:
        client, window = _store()
    if not client.set(SWEEP_LOCK, "1", nx=True, px=2000):
        return []  # another worker sweeps this round
    from .events import run_pending  # the task module imports this one's callers

    led = []
    for raw in client.zrangebyscore(ITEMS, "-inf", time.time() - SETTLE, start=0, num=BATCH):
        resource, _, item_id = raw.decode().partition(":")
        pending = Pending(client, resource, item_id, window or 1.0)
        if pending.adopt():
            run_pending.apply_async(args=[resource, item_id, pending.leader])
            led.append(pending.item)
    if led:
        log.warning("led the run of %d item(s) whose pending events had no claim: %s", len(led), ", ".join(led[:10]))
    return led
