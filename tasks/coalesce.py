"""Coalescing (SPEC §8): events for one item arriving within COALESCE_SECONDS become one run.

Every event task adds its envelope to the item's pending set in Redis (a sorted set of event
ids by arrival, and a hash of their envelopes) in one Lua call that also elects a leader: the
first event to find no leader becomes it and schedules the run (`tasks.run_pending`, a message
due when the window has passed); the others return "merged into run <leader>" once their
envelope is in the store. Events are ordered by when the receiver took them. Nobody waits in a worker slot: the window is a message's countdown,
sliding from the latest arrival and capped at four windows after the first. The run reads
what is pending under the item's lock and removes what it handled in the pipeline that
releases the lock; it resigns only when nothing is pending (checked atomically), else it
schedules itself again for what arrived meanwhile.

The window never leaves the token's budget idle while work waits: when more items are waiting
out their window than the budget can serve within one window (`burst_size`), a new item's run
starts at once, in its leading event's own task (no message to queue behind the burst; if that
task dies, its redelivered message joins and leads again). In a burst (a bulk-webhook trigger:
one event per item) the budget is busy from the first second, and the last items still wait at
least a window behind the others; sparse traffic (an editor's created -> changed -> published)
keeps its window.

Nothing is lost when a worker dies: envelopes stay pending until a run has handled them; the
scheduled run is an un-acknowledged message, delivered again (acks_late) if its worker dies;
the leader's claim names the leading event, so that event's own message, delivered again,
schedules the run again. A claim that lapsed (LEASE_MARGIN past the due time) lets the next
event lead: two runs at once are harmless, the item lock orders them and each reads what is
pending under it.

Nor when Redis fails part-way (tasks.events): a step before the run is done requeues its
message; after it, the claim is released through tasks.deferred. The claim is a lease, so it
never outlives its run by more than LEASE_MARGIN, and every item with pending events is listed
(ITEMS): the worker's sweep (`orphans`, every few seconds) leads the run of an item whose events
wait with no claim, so they never wait for an unrelated event to arrive.
"""
from __future__ import annotations

import json
import math
import threading
import time
from contextlib import contextmanager
from typing import Any, Iterator

import redis
from redis.client import Pipeline

from prepr.ratelimit import parse_rate_limit
from prepr_automation.store import PREFIX, trace_key

from . import deferred

LEASE_MARGIN = 30.0  # seconds a claim outlives its run's due time (or its last heartbeat)
PENDING_TTL = 30 * 24 * 3600
WAITING = f"{PREFIX}coalesce:waiting"  # item -> due time of every run waiting out its window
ITEMS = f"{PREFIX}coalesce:items"  # item -> since when it has events pending (the sweep's list)
CALLS_PER_ITEM = 2  # a GET and a PUT


def burst_size(rate_limit: str, window: float) -> int:
    """How many items the budget serves within one window: past that, waiting only idles it."""
    capacity = min(item.amount * max(1, math.ceil(window / item.get_expiry()))
                   for item in parse_rate_limit(rate_limit))
    return max(1, capacity // CALLS_PER_ITEM)


# KEYS: waiting  ARGV: item, due time, stale before, burst size (0: always wait)
# Counting and joining the waiting items is one step, so concurrent leaders never all wait.
_WAIT = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
if tonumber(ARGV[4]) > 0 and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
return 1
"""
# KEYS: order (zset), envelopes (hash), leader, trace, items  ARGV: event id, envelope, now, lease ms, ttl, item
# An event's place is when the receiver took it (its trace's `received` record), else now.
_JOIN = """
local at = ARGV[3]
local record = redis.call('HGET', KEYS[4], 'received')
if record then
  local ok, decoded = pcall(cjson.decode, record)
  if ok and type(decoded) == 'table' and tonumber(decoded['received_at']) then at = decoded['received_at'] end
end
if redis.call('ZADD', KEYS[1], 'NX', at, ARGV[1]) == 1 then redis.call('HSET', KEYS[2], ARGV[1], ARGV[2]) end
redis.call('EXPIRE', KEYS[1], ARGV[5])
redis.call('EXPIRE', KEYS[2], ARGV[5])
redis.call('ZADD', KEYS[5], 'NX', ARGV[3], ARGV[6])
local leader = redis.call('GET', KEYS[3])
if leader and leader ~= ARGV[1] then return {0, leader} end
redis.call('SET', KEYS[3], ARGV[1], 'PX', ARGV[4])
return {1, ARGV[1]}
"""
# KEYS: order, leader, items  ARGV: leader, force (1: resign whatever is pending), item
# Nothing pending and no claim: the item leaves the sweep's list in the same step.
_RESIGN = """
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 1 end
local empty = redis.call('ZCARD', KEYS[1]) == 0
if ARGV[2] == '1' or empty then
  redis.call('DEL', KEYS[2])
  if empty then redis.call('ZREM', KEYS[3], ARGV[3]) end
  return 1
end
return 0
"""
# KEYS: order, leader, items  ARGV: item, claim, lease ms
# The sweep's step per listed item: 0 claim alive, 1 claimed for a new run, 2 nothing pending (unlisted).
_ADOPT = """
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
if redis.call('ZCARD', KEYS[1]) == 0 then redis.call('ZREM', KEYS[3], ARGV[1]) return 2 end
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
return 1
"""
# KEYS: leader  ARGV: leader, lease ms
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""


class Pending:
    """One item's pending events and its leader's claim."""

    def __init__(self, client: redis.Redis, resource: str, item_id: str, window: float,
                 leader: str = "") -> None:
        self.client, self.resource, self.item_id, self.window = client, resource, item_id, window
        self.cap = window * 4
        item = f"{resource}:{item_id}"
        self.order, self.envelopes = f"{PREFIX}pending:{item}", f"{PREFIX}pending-env:{item}"
        self.leader_key = f"{PREFIX}leader:{item}"
        self.item, self.leader = item, leader

    def join(self, envelope: dict[str, Any]) -> tuple[bool, str]:
        """Durably add the envelope; (True, its id) when it leads, else (False, the leader's id)."""
        led, leader = self.client.eval(_JOIN, 5, self.order, self.envelopes, self.leader_key,
                                       trace_key(str(envelope["id"])), ITEMS, str(envelope["id"]),
                                       json.dumps(envelope), f"{time.time():.6f}",
                                       int((self.cap + LEASE_MARGIN) * 1000), PENDING_TTL, self.item)
        self.leader = leader.decode() if isinstance(leader, bytes) else str(leader)
        return led == 1, self.leader

    def window_left(self) -> float:
        """Seconds until COALESCE_SECONDS passed since the latest arrival, or the cap since the first."""
        stamps = [score for _, score in self.client.zrange(self.order, 0, -1, withscores=True)]
        if not stamps:
            return 0.0
        return min(max(stamps) + self.window, min(stamps) + self.cap) - time.time()

    def schedule(self, task: Any, burst: int = 0) -> float | None:
        """Send the run's message, due when the window has passed; returns the delay. None: no
        message, the caller runs it at once, since `burst` items already wait out their window
        (0: always wait)."""
        due, now = max(self.window_left(), 0.05), time.time()
        if not self.client.eval(_WAIT, 1, WAITING, self.item, now + due, now - LEASE_MARGIN, burst):
            return None
        self.client.eval(_RENEW, 1, self.leader_key, self.leader, int((due + LEASE_MARGIN) * 1000))
        task.apply_async(args=[self.resource, self.item_id, self.leader], countdown=due)
        return due

    def started(self) -> None:
        """The run no longer waits: it leaves the count of waiting items."""
        self.client.zrem(WAITING, self.item)

    def read(self) -> list[dict[str, Any]]:
        """The pending envelopes, oldest first (call under the item's lock)."""
        ids = [i.decode() for i in self.client.zrange(self.order, 0, -1)]
        raw = self.client.hmget(self.envelopes, ids) if ids else []
        return [json.loads(r) for r in raw if r is not None]

    def remove(self, pipe: Pipeline, event_ids: list[str]) -> None:
        if event_ids:
            pipe.zrem(self.order, *event_ids)
            pipe.hdel(self.envelopes, *event_ids)

    def resign(self, force: bool = False) -> bool:
        """Give up the claim when nothing is pending (or `force`); False: there is more to run."""
        return self.client.eval(_RESIGN, 3, self.order, self.leader_key, ITEMS, self.leader, "1" if force else "0",
                                self.item) == 1

    def release_later(self) -> None:
        """The store failed after the run: give up the claim as soon as it answers (tasks.deferred),
        whatever is pending; the sweep (`orphans`) then leads the run of what is left."""
        deferred.send(self.client, lambda pipe: pipe.eval(_RESIGN, 3, self.order, self.leader_key, ITEMS,
                                                          self.leader, "1", self.item))

    def adopt(self) -> bool:
        """Claim an item whose events wait with no claim (a run that is gone); True: run it."""
        first = self.client.zrange(self.order, 0, 0)
        self.leader = first[0].decode() if first else self.leader
        return self.client.eval(_ADOPT, 3, self.order, self.leader_key, ITEMS, self.item, self.leader,
                                int((self.cap + LEASE_MARGIN) * 1000)) == 1

    @contextmanager
    def leading(self) -> Iterator[None]:
        """Keep the claim alive while the run works (a heartbeat thread)."""
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(LEASE_MARGIN / 3):
                try:
                    self.client.eval(_RENEW, 1, self.leader_key, self.leader, int(LEASE_MARGIN * 1000))
                except redis.RedisError:
                    pass  # the claim may lapse: a second run is harmless (see the module doc)

        thread = threading.Thread(target=beat, name=f"lease-{self.leader}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
