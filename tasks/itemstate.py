"""What the worker remembers per item, in the shared store, and the item's lock.

- the lock: events for one item run one at a time across all workers; it has an owner token
  (only its owner releases it) and a short expiry that a heartbeat extends while its owner
  lives, so the lock of a killed owner lapses within LOCK_TTL, not a whole task timeout;
- the loop guard: the automation's recent writes to the item, in a sliding window;
- the last-seen snapshot (for the `changed` operator) and when throttled rules last fired.

`begin` takes the lock and reads the state and the loop guard's count in one Lua call (under
the lock nobody else writes the item, so the count holds for the whole run); `end` writes what
changed, releases the lock and lets the caller add its own writes (traces, effect records,
the drained pending events) to the same pipeline. When the store is unreachable at the end of
an attempt, the release is handed to `tasks.deferred`, which sends it as soon as Redis answers
again: the next attempt never waits out a lock its failed predecessor could not release.
"""
from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any, Callable

import redis
from redis.client import Pipeline

from prepr_automation.store import PREFIX

from . import deferred

LOCK_TTL = 15.0  # seconds; extended every LOCK_TTL / 3 while the owner works
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
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# KEYS: lock  ARGV: token, expiry ms
_EXTEND = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""

State = tuple[dict[str, Any] | None, dict[str, float]]


class ItemBusy(Exception):
    """Another worker holds the item's lock; the event is retried shortly."""


class ItemState:
    def __init__(self, client: redis.Redis, item_id: str, *, lock_timeout: float = 120,
                 loop_max_writes: int = 5, loop_window: int = 600) -> None:
        self.client = client
        self.item_id = item_id
        self.lock_timeout = min(lock_timeout, LOCK_TTL)
        self.loop_max_writes = loop_max_writes
        self.loop_window = loop_window
        self.token = uuid.uuid4().hex
        self.held = False
        self._beat = threading.Event()
        self._loaded_snapshot: bytes | None = None
        self._writes_before = 0  # the automation's writes in the window, as `begin` found them
        self._writes_made = 0

    def key(self, kind: str) -> str:
        return f"{PREFIX}{kind}:{self.item_id}"

    # the lock, with the state read under it ----------------------------------------------
    def begin(self, blocking_timeout: float = 30, poll: float = 0.02) -> State:
        """Take the lock (waiting up to blocking_timeout) and read the state; raise ItemBusy."""
        keys = [self.key("lock"), self.key("snap"), self.key("fired"), self.key("writes")]
        deadline = time.monotonic() + blocking_timeout
        while True:
            window_start = f"{time.time() - self.loop_window:.6f}"
            answer = self.client.eval(_BEGIN, len(keys), *keys, self.token, int(self.lock_timeout * 1000),
                                      window_start)
            if answer[0] == 1:
                break
            if time.monotonic() >= deadline:
                raise ItemBusy(f"{self.item_id} is locked by another worker")
            time.sleep(poll)
        self.held = True
        self._beat = threading.Event()
        threading.Thread(target=self._heartbeat, args=(self._beat,), name=f"lock-{self.item_id}", daemon=True).start()
        raw_snapshot, raw_fired, self._writes_before = answer[1], answer[2], int(answer[3])
        self._loaded_snapshot = raw_snapshot or None
        fired = {raw_fired[i].decode(): float(raw_fired[i + 1]) for i in range(0, len(raw_fired), 2)}
        return (json.loads(raw_snapshot) if raw_snapshot else None), fired

    def end(self, snapshot: dict[str, Any], fired: list[str],
            also: Callable[[Pipeline], None] = lambda pipe: None) -> None:
        """Store what this run leaves behind, release the lock; unchanged values are not rewritten."""
        now = time.time()
        encoded = json.dumps(snapshot, sort_keys=True).encode()
        with self.client.pipeline(transaction=False) as pipe:
            if encoded != self._loaded_snapshot:
                pipe.set(self.key("snap"), encoded, ex=SNAPSHOT_TTL)
            if fired:
                pipe.hset(self.key("fired"), mapping={rule_id: now for rule_id in fired})
                pipe.expire(self.key("fired"), FIRED_TTL)
            also(pipe)
            pipe.eval(RELEASE, 1, self.key("lock"), self.token)
            try:
                pipe.execute()
            except BaseException:  # the store failed: stop the heartbeat, release when it answers
                self.release()
                raise
        self.held = False
        self._beat.set()

    def release(self) -> None:
        """Let go without writing (the attempt failed); deferred if the store cannot be reached."""
        if self.held:
            self.held = False
            self._beat.set()
            deferred.send(self.client, lambda pipe: pipe.eval(RELEASE, 1, self.key("lock"), self.token))

    def _heartbeat(self, stop: threading.Event) -> None:
        while not stop.wait(self.lock_timeout / 3):
            try:
                self.client.eval(_EXTEND, 1, self.key("lock"), self.token, int(self.lock_timeout * 1000))
            except redis.RedisError:
                pass  # the store is away: the lock may lapse, the next attempt re-plans from the item

    # loop guard -------------------------------------------------------------------------
    def recent_writes(self) -> int:
        return self._writes_before + self._writes_made

    def loop_suspected(self) -> bool:
        """True when one more write would exceed loop_max_writes within the window."""
        return self.recent_writes() >= self.loop_max_writes

    def record_write(self, now: float | None = None) -> None:
        """Right after the PUT, so a failure later in the run cannot leave a write uncounted."""
        now = time.time() if now is None else now
        key = self.key("writes")
        self._writes_made += 1
        member = f"{now:.6f}:{uuid.uuid4().hex[:6]}"
        deferred.send(self.client, lambda pipe: (pipe.zadd(key, {member: now}), pipe.expire(key, self.loop_window + 60)))
