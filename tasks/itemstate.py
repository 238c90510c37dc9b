"""What the worker remembers per item, in the shared store.

- a lock, so events for one item run one at a time across all workers (owner token + expiry:
  redis-py's Lock, released only by its owner, expiring if the owner dies);
- the loop guard: the automation's recent writes to the item, in a sliding window;
- the last-seen snapshot (for the `changed` operator) and when each rule last fired (throttle).
"""
from __future__ import annotations

import json
import time
import uuid
from typing import Any

import redis
from redis.lock import Lock

from prepr_automation.store import PREFIX

SNAPSHOT_TTL = 90 * 24 * 3600


class ItemState:
    def __init__(self, client: redis.Redis, item_id: str, *, lock_timeout: float = 120,
                 loop_max_writes: int = 5, loop_window: int = 600) -> None:
        self.client = client
        self.item_id = item_id
        self.lock_timeout = lock_timeout
        self.loop_max_writes = loop_max_writes
        self.loop_window = loop_window

    def _key(self, kind: str) -> str:
        return f"{PREFIX}{kind}:{self.item_id}"

    def lock(self, blocking_timeout: float = 30) -> Lock:
        return Lock(self.client, self._key("lock"), timeout=self.lock_timeout,
                    blocking_timeout=blocking_timeout, sleep=0.02)

    # loop guard -------------------------------------------------------------------------
    def recent_writes(self, now: float | None = None) -> int:
        now = time.time() if now is None else now
        key = self._key("writes")
        self.client.zremrangebyscore(key, 0, now - self.loop_window)
        return int(self.client.zcard(key))

    def loop_suspected(self, now: float | None = None) -> bool:
        """True when one more write would exceed loop_max_writes within the window."""
        return self.recent_writes(now) >= self.loop_max_writes

    def record_write(self, now: float | None = None) -> None:
        now = time.time() if now is None else now
        key = self._key("writes")
        with self.client.pipeline() as pipe:
            pipe.zadd(key, {f"{now:.6f}:{uuid.uuid4().hex[:6]}": now})
            pipe.expire(key, self.loop_window + 60)
            pipe.execute()

    # changed / throttle -----------------------------------------------------------------
    def snapshot(self) -> dict[str, Any] | None:
        raw = self.client.get(self._key("snap"))
        return json.loads(raw) if raw else None

    def save_snapshot(self, snapshot: dict[str, Any]) -> None:
        self.client.set(self._key("snap"), json.dumps(snapshot), ex=SNAPSHOT_TTL)

    def last_fired(self) -> dict[str, float]:
        raw = self.client.hgetall(self._key("fired"))
        return {k.decode(): float(v) for k, v in raw.items()}

    def record_fired(self, rule_ids: list[str], now: float | None = None, keep: int = 30 * 24 * 3600) -> None:
        if not rule_ids:
            return
        now = time.time() if now is None else now
        key = self._key("fired")
        with self.client.pipeline() as pipe:
            pipe.hset(key, mapping={rule_id: now for rule_id in rule_ids})
            pipe.expire(key, keep)
            pipe.execute()
