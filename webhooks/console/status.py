"""What the status page shows: broker, queues, workers, rate-limit budget, eviction policy."""
from __future__ import annotations

import re
import time
from typing import Any

import redis

from prepr_automation import budget, history
from prepr_automation.store import PREFIX

WORKERS = f"{PREFIX}console:workers"  # hash: worker name -> last time it answered a ping
SEEN_WITHIN = 60
# The Prepr rate limiter's keys (prepr.ratelimit) and those of the `limits` library's Redis storage.
LIMIT_PATTERNS = ("prepr:ratelimit:*", "LIMITS:*")


def broker(client: redis.Redis) -> dict[str, Any]:
    info = client.info("server") | client.info("memory")
    policy = info.get("maxmemory_policy", "unknown")
    room = budget.room(client)  # full or not, memory and connections against the plan's limits
    return {"version": info.get("redis_version"), "used_memory": info.get("used_memory_human"),
            "maxmemory": info.get("maxmemory_human"), "policy": policy, "policy_ok": policy == "noeviction",
            "room": room, "room_line": budget.describe(room), "history_bytes": int(client.get(budget.TOTAL) or 0)}


def workers(client: redis.Redis, timeout: float = 1.0) -> list[dict[str, Any]]:
    """Workers that answered a ping now or within the last minute (remembered across page loads)."""
    from tasks.celery_app import app  # only the console's web process needs Celery's control API

    now = time.time()
    # a connection of its own, closed after: the shared producer pool (one connection) can be held by
    # a send in flight, and a page must never wait on it
    with app.connection_for_write() as connection:
        answers = app.control.inspect(timeout=timeout, connection=connection).ping() or {}
    if answers:
        client.hset(WORKERS, mapping={name: now for name in answers})
    seen = {k.decode(): float(v) for k, v in client.hgetall(WORKERS).items()}
    stale = [name for name, at in seen.items() if now - at > 24 * 3600]
    if stale:
        client.hdel(WORKERS, *stale)
    return sorted(({"name": name, "ago": round(now - at), "answered": name in answers}
                   for name, at in seen.items() if now - at <= SEEN_WITHIN), key=lambda w: w["name"])


def rate_limits(client: redis.Redis, limit: int = 200) -> list[dict[str, Any]]:
    """The limiter's keys and what each holds: requests in the current window, or a time it keeps.

    Read generically (by key type), so it shows the budget whichever limiter implementation
    wrote it: a sorted-set log (entries in the last second), a list or a counter.
    """
    seconds, micros = client.time()
    now_us = seconds * 1_000_000 + micros
    rows = []
    for pattern in LIMIT_PATTERNS:
        for key in client.scan_iter(match=pattern, count=500):
            if len(rows) >= limit:
                return rows
            name = key.decode()
            kind = client.type(key).decode()
            if kind == "zset":
                value: Any = client.zcount(key, now_us - 1_000_000, "+inf")
                meaning = "requests in the last second"
            elif kind == "list":
                value, meaning = _moving_window(client, name, seconds + micros / 1_000_000)
            elif kind == "string" and name.endswith((":blocked", ":tat")):  # a time in µs on Redis' clock
                value = max(0, round((int(client.get(key) or 0) - now_us) / 1000))
                meaning = "ms until the next free slot" if name.endswith(":tat") else "ms blocked after a 429"
            elif kind == "string":
                value, meaning = (client.get(key) or b"").decode(errors="replace"), "requests in the window"
            else:
                value, meaning = kind, ""
            rows.append({"key": name, "value": value, "meaning": meaning, "ttl": client.pttl(key)})
    return sorted(rows, key=lambda r: r["key"])


_WINDOW = re.compile(r"/(\d+)/(\d+)/(second|minute|hour|day)$")
_UNIT = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}


def _moving_window(client: redis.Redis, name: str, now: float) -> tuple[Any, str]:
    """A `limits` moving window (`LIMITS:LIMITER/<key>/<amount>/<multiples>/<unit>`): a list of
    request times, newest first, trimmed to <amount>; those within the window are in use."""
    found = _WINDOW.search(name)
    if found is None:
        return client.llen(name), "entries"
    amount, multiples, unit = int(found[1]), int(found[2]), found[3]
    since = now - multiples * _UNIT[unit]
    used = sum(1 for ts in client.lrange(name, 0, amount - 1) if float(ts) >= since)
    return f"{used} of {amount}", f"requests in the last {multiples if multiples > 1 else ''} {unit}".replace("  ", " ")


def snapshot(client: redis.Redis, rate: float) -> dict[str, Any]:
    out: dict[str, Any] = {"rate_limit": rate}
    try:
        out["broker"] = broker(client)
        out["queues"] = history.queue_depths(client)
        out["limits"] = rate_limits(client)
    except redis.RedisError as exc:
        out["error"] = f"Redis: {type(exc).__name__}"
        return out
    try:
        out["workers"] = workers(client)
    except Exception as exc:  # noqa: BLE001 - the broker may answer Redis but not the control API
        out["workers_error"] = f"{type(exc).__name__}"
    return out
