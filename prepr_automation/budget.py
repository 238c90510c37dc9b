"""The store's budget (SPEC §8): the history within HISTORY_MAX_BYTES, and how full Redis is.

The history is what the console and `trace` read: per event its trace hash and its entry in the
time index, plus the per-minute counts. Everything else in Redis (dedupe marks, queued and
un-acked messages, pending events, locks, effect records, dead letters) is the service's
memory and is never touched here.

Redis cannot say cheaply how many bytes a set of keys takes, so the writers keep an estimate:
every write of a history field adds its length (and, once per event, ENTRY_OVERHEAD for the
hash, its expiry and the index entry) to one counter, a rewrite of a field adds the difference.
`trim` removes the oldest events (trace and index entry) while the estimate is over the budget,
down to TRIM_TO of it, and those older than the traces' TTL; an entry removed counts for the
average size of an entry, so the estimate drifts towards the truth, never away from it.
benchmarks/footprint.py compares the estimate with Redis' own used_memory.
"""
from __future__ import annotations

import logging
import time
from typing import Any

import redis

from .store import PREFIX, trace_key

log = logging.getLogger("prepr_automation.budget")
TOTAL = f"{PREFIX}history:bytes"
DEFAULT_BUDGET = 256 * 1024 ** 2  # when Redis has no maxmemory
ENTRY_OVERHEAD = 560  # Redis' own bytes per listed event beyond its fields' lengths: the trace hash with its
# key, fields and expiry (~430: MEMORY USAGE of a 4-field hash less its values) and the index entry (~130)
TRIM_TO = 0.95  # a trim leaves room for a few more events, so not every write trims
BATCH = 500  # events removed per call at most (the call stays short; the next write goes on)
REREAD = 60.0  # seconds between reads of maxmemory (an operator may change the plan)
FULL_AT = 0.99  # used_memory over this share of maxmemory: writes are about to be refused

# KEYS: index, total  ARGV: budget, oldest score kept, batch, trace key prefix, cap (entries), TRIM_TO
# Deletions come first: under `noeviction` with memory full a script may still delete, and once
# it has written it may also set the counter (Redis checks memory at a script's first write).
_TRIM = """
local n = redis.call('ZCARD', KEYS[1])
if n == 0 then
  if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('DEL', KEYS[2]) end
  return 0
end
local total = tonumber(redis.call('GET', KEYS[2]) or '0')
local budget, batch = tonumber(ARGV[1]), tonumber(ARGV[3])
local victims = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[2], 'LIMIT', 0, batch)
local over = n - tonumber(ARGV[5])
if over > #victims then victims = redis.call('ZRANGE', KEYS[1], 0, math.min(over, batch) - 1) end
if total > budget then
  local k = math.min(batch, math.ceil((total - budget * tonumber(ARGV[6])) / (total / n)))
  if k > #victims then victims = redis.call('ZRANGE', KEYS[1], 0, k - 1) end
end
if #victims == 0 then return 0 end
local keys = {}
for i, id in ipairs(victims) do keys[i] = ARGV[4] .. id end
for i = 1, #keys, 100 do
  redis.call('DEL', unpack(keys, i, math.min(i + 99, #keys)))
  redis.call('ZREM', KEYS[1], unpack(victims, i, math.min(i + 99, #victims)))
end
if #victims >= n then redis.call('DEL', KEYS[2])
else redis.call('SET', KEYS[2], string.format('%d', math.max(0, total - total / n * #victims))) end
return #victims
"""


def maxmemory(client: redis.Redis) -> int:
    """Redis' maxmemory in bytes (0: none). INFO, which managed plans allow where CONFIG is not."""
    return int(client.info("memory").get("maxmemory") or 0)


class Budget:
    """One process's view of the budget: its size, and the trim call the writers append."""

    def __init__(self, client: redis.Redis, configured: int | None, ttl: int, cap: int) -> None:
        self.client, self.configured, self.ttl, self.cap = client, configured, ttl, cap
        self._script = client.register_script(_TRIM)
        self._bytes, self._at = 0, -REREAD

    @property
    def bytes(self) -> int:
        """HISTORY_MAX_BYTES, else half of maxmemory, else DEFAULT_BUDGET (re-read once a minute)."""
        if self.configured:
            return self.configured
        if time.monotonic() - self._at >= REREAD:
            try:
                limit = maxmemory(self.client)
            except redis.RedisError:
                limit = 0 if not self._bytes else self._bytes * 2
            self._bytes, self._at = (limit // 2 if limit else DEFAULT_BUDGET), time.monotonic()
        return self._bytes

    def trim(self, pipe: Any = None, now: float | None = None) -> Any:
        """Add the trim to `pipe` (the caller executes it), else run it; returns the events removed."""
        oldest = (time.time() if now is None else now) - self.ttl
        args = [self.bytes, oldest, BATCH, trace_key(""), self.cap, TRIM_TO]
        return self._script(keys=[_index(), TOTAL], args=args, client=pipe if pipe is not None else self.client)

    def make_room(self) -> int:
        """Redis refused a write (full under `noeviction`): drop the oldest BATCH events of the
        history whatever the budget, so queued events and dedupe marks find room. Never raises."""
        try:
            removed = int(self._script(keys=[_index(), TOTAL], args=[1, 0, BATCH, trace_key(""), self.cap, 0]))
        except redis.RedisError:
            return 0
        if removed:
            log.warning("Redis is full: %d of the oldest events' history removed to make room", removed)
        return removed

    def used(self) -> int:
        """The estimate: bytes the history takes now."""
        return int(self.client.get(TOTAL) or 0)


def _index() -> str:
    from .history import INDEX  # history imports this module

    return INDEX


def room(client: redis.Redis) -> dict[str, Any]:
    """How full Redis is, for /health, the console's status page and `doctor`:
    {"full": bool, "used": bytes, "maxmemory": bytes (0: none), "clients": n, "maxclients": n}."""
    info = client.info("memory") | client.info("clients")
    used, limit = int(info.get("used_memory") or 0), int(info.get("maxmemory") or 0)
    return {"full": bool(limit) and used >= limit * FULL_AT, "used": used, "maxmemory": limit,
            "clients": int(info.get("connected_clients") or 0), "maxclients": int(info.get("maxclients") or 0)}


def describe(figures: dict[str, Any]) -> str:
    """One line: "Redis full: 24.9 MB of 25.0 MB, 14 of 20 connections" (or without "full")."""
    mb = 1024 ** 2
    limit = f" of {figures['maxmemory'] / mb:.1f} MB" if figures.get("maxmemory") else " (no maxmemory)"
    head = "Redis full: " if figures.get("full") else "Redis: "
    return (f"{head}{figures['used'] / mb:.1f} MB{limit}, {figures['clients']} of {figures['maxclients']} "
            "connections")
