"""What the worker remembers per item, in the shared store, and the item's lock.

- the lock: events for one item run one at a time across all workers; it has an owner token
  (only its owner releases it) and an expiry (a dead owner cannot hold it forever);
- the loop guard: the automation's recent writes to the item, in a sliding window;
- the last-seen snapshot (for the `changed` operator) and when throttled rules last fired.

An event costs two round trips here, plus one per write to the item: `begin` takes the lock
and reads the state and the loop guard's count in one Lua call (under the lock nobody else
writes the item, so the count holds for the whole event); `end` writes what changed, releases
the lock and lets the caller add its own writes (the trace) to the same pipeline.
"""
from __future__ import annotations

import json
import time
import uuid
from functools import lru_cache
from typing import Any, Callable

import redis

from prepr_automation.store import PREFIX, Batch

SNAPSHOT_TTL = 90 * 24 * 3600
FIRED_TTL = 30 * 24 * 3600

# KEYS: lock, snapshot, fired, writes  ARGV: token, expiry ms, start of the loop window
_BEGIN = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', ARGV[3])
  return {1, redis.call('GET', KEYS[2]) or false, redis.call('HGETALL', KEYS[3]), redis.call('ZCARD', KEYS[4])}
end
return {0}
"""
# KEYS: lock  ARGV: token
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

State = tuple[dict[str, Any] | None, dict[str, float]]


@lru_cache(maxsize=8)
def _release_script(client: redis.Redis) -> Any:
    return client.register_script(_RELEASE)


class ItemBusy(Exception):
    """Another worker holds the item's lock; the event is retried shortly."""


class ItemState:
    def __init__(self, client: redis.Redis, item_id: str, *, lock_timeout: float = 120,
                 loop_max_writes: int = 5, loop_window: int = 600) -> None:
        self.client = client
        self.item_id = item_id
        self.lock_timeout = lock_timeout
        self.loop_max_writes = loop_max_writes
        self.loop_window = loop_window
        self.token = uuid.uuid4().hex
        self._release = _release_script(client)
        self._loaded_snapshot: bytes | None = None
        self._writes_before = 0  # the automation's writes in the window, as `begin` found them
        self._writes_made = 0

    def _key(self, kind: str) -> str:
        return f"{PREFIX}{kind}:{self.item_id}"

    # the lock, with the state read under it ----------------------------------------------
    def begin(self, blocking_timeout: float = 30, poll: float = 0.02,
              also: Callable[[Batch], Callable[[Any], None] | None] | None = None) -> State:
        """Take the lock (waiting up to blocking_timeout) and read the state; raise ItemBusy.

        `also(pipe)` may queue one command on the first attempt's round trip; the function it
        returns (if any) gets that command's answer."""
        keys = [self._key("lock"), self._key("snap"), self._key("fired"), self._key("writes")]
        deadline = time.monotonic() + blocking_timeout
        while True:
            window_start = f"{time.time() - self.loop_window:.6f}"
            with Batch(self.client) as pipe:
                pipe.eval(_BEGIN, len(keys), *keys, self.token, int(self.lock_timeout * 1000), window_start)
                settle = also(pipe) if also is not None else None
                answer, *extra = pipe.execute()
            also = None  # the first attempt only
            if settle is not None:
                settle(extra[0])
            if answer[0] == 1:
                break
            if time.monotonic() >= deadline:
                raise ItemBusy(f"{self.item_id} is locked by another worker")
            time.sleep(poll)
        raw_snapshot, raw_fired, self._writes_before = answer[1], answer[2], int(answer[3])
        self._loaded_snapshot = raw_snapshot or None
        fired = {raw_fired[i].decode(): float(raw_fired[i + 1]) for i in range(0, len(raw_fired), 2)}
        return (json.loads(raw_snapshot) if raw_snapshot else None), fired

    def end(self, snapshot: dict[str, Any], fired: list[str],
            also: Callable[[Batch], None] = lambda pipe: None) -> None:
        """Store what this event leaves behind, release the lock; unchanged values are not rewritten."""
        now = time.time()
        encoded = json.dumps(snapshot, sort_keys=True).encode()
        with Batch(self.client) as pipe:
            if encoded != self._loaded_snapshot:
                pipe.set(self._key("snap"), encoded, ex=SNAPSHOT_TTL)
            if fired:
                pipe.hset(self._key("fired"), mapping={rule_id: now for rule_id in fired})
                pipe.expire(self._key("fired"), FIRED_TTL)
            also(pipe)
            pipe.eval(_RELEASE, 1, self._key("lock"), self.token)
            pipe.execute()

    def release(self) -> None:
        """Let go without writing (the event failed); a no-op if the lock expired meanwhile."""
        self._release(keys=[self._key("lock")], args=[self.token])

    # loop guard -------------------------------------------------------------------------
    def recent_writes(self) -> int:
        return self._writes_before + self._writes_made

    def loop_suspected(self) -> bool:
        """True when one more write would exceed loop_max_writes within the window."""
        return self.recent_writes() >= self.loop_max_writes

    def record_write(self, now: float | None = None) -> None:
        """Right after the PUT, so a failure later in the event cannot leave a write uncounted."""
        now = time.time() if now is None else now
        key = self._key("writes")
        with Batch(self.client) as pipe:
            pipe.zadd(key, {f"{now:.6f}:{uuid.uuid4().hex[:6]}": now})
            pipe.expire(key, self.loop_window + 60)
            pipe.execute()
        self._writes_made += 1
