"""Coalescing (SPEC §8): events for one item arriving within COALESCE_SECONDS become one run.

Every event task pushes its envelope onto the item's pending set in Redis (a sorted set of
event ids by arrival, and a hash of their envelopes) in one Lua call that also elects a
leader: the first task to find no leader becomes it, the others return "merged into run X"
once their envelope is in the store, and their messages are acknowledged. The leader waits
out the window (sliding from the latest arrival, capped), then runs: under the item's lock it
reads what is pending and removes what it handled in the pipeline that releases the lock.
It resigns only when nothing is pending (checked atomically), else it runs again.

Nothing is lost when a leader dies: the envelopes stay pending, its lease (kept alive by a
heartbeat) lapses within LEASE seconds, and its own message, not acknowledged, is delivered
again (acks_late) to a worker that becomes leader and runs what is left. Two leaders at once
(a lease lapsed during an outage) are harmless: the item lock orders their runs, and each
reads what is pending under it.
"""
from __future__ import annotations

import json
import threading
import time
from typing import Any

import redis
from redis.client import Pipeline

from prepr_automation.store import PREFIX

LEASE = 5.0  # seconds a leader's claim survives without a heartbeat
PENDING_TTL = 30 * 24 * 3600

# KEYS: order (zset), envelopes (hash), leader  ARGV: event id, envelope, now, run id, lease ms, ttl
_JOIN = """
if redis.call('ZADD', KEYS[1], 'NX', ARGV[3], ARGV[1]) == 1 then redis.call('HSET', KEYS[2], ARGV[1], ARGV[2]) end
redis.call('EXPIRE', KEYS[1], ARGV[6])
redis.call('EXPIRE', KEYS[2], ARGV[6])
local leader = redis.call('GET', KEYS[3])
if leader then return {0, leader} end
redis.call('SET', KEYS[3], ARGV[4], 'PX', ARGV[5])
return {1, ARGV[4]}
"""
# KEYS: order, leader  ARGV: run id, force (1: resign whatever is pending)
_RESIGN = """
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 1 end
if ARGV[2] == '1' or redis.call('ZCARD', KEYS[1]) == 0 then redis.call('DEL', KEYS[2]) return 1 end
return 0
"""
# KEYS: leader  ARGV: run id, lease ms
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""


class Pending:
    """One item's pending events and its leader's claim."""

    def __init__(self, client: redis.Redis, item: str, window: float) -> None:
        self.client, self.window = client, window
        self.cap = max(window * 4, window + 2)
        self.order, self.envelopes = f"{PREFIX}pending:{item}", f"{PREFIX}pending-env:{item}"
        self.leader_key = f"{PREFIX}leader:{item}"
        self.run_id = ""
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    def join(self, envelope: dict[str, Any], run_id: str) -> tuple[bool, str]:
        """Durably add the envelope; (True, run_id) for the new leader, else (False, leader's run)."""
        led, leader = self.client.eval(_JOIN, 3, self.order, self.envelopes, self.leader_key, str(envelope["id"]),
                                       json.dumps(envelope), f"{time.time():.6f}", run_id, int(LEASE * 1000),
                                       PENDING_TTL)
        leader = leader.decode() if isinstance(leader, bytes) else str(leader)
        if led == 1:
            self.run_id = run_id
            self._start_heartbeat()
        return led == 1, leader

    def wait_window(self) -> None:
        """Until COALESCE_SECONDS passed since the latest arrival, or the cap since the first."""
        while True:
            stamps = [score for _, score in self.client.zrange(self.order, 0, -1, withscores=True)]
            if not stamps:
                return
            now = time.time()
            left = min(max(stamps) + self.window, min(stamps) + self.cap) - now
            if left <= 0:
                return
            time.sleep(min(left, 0.25))

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
        """Give up the claim when nothing is pending (or `force`); False: run again."""
        done = self.client.eval(_RESIGN, 2, self.order, self.leader_key, self.run_id, "1" if force else "0") == 1
        if done:
            self._stop.set()
        return done

    def _start_heartbeat(self) -> None:
        def beat() -> None:
            while not self._stop.wait(LEASE / 3):
                try:
                    self.client.eval(_RENEW, 1, self.leader_key, self.run_id, int(LEASE * 1000))
                except redis.RedisError:
                    pass  # the lease may lapse: a second leader is harmless (see the module doc)

        self._beat = threading.Thread(target=beat, name=f"lease-{self.run_id}", daemon=True)
        self._beat.start()
