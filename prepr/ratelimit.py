"""One request budget for every process that talks to Prepr.

Prepr counts requests per token, not per process, so the budget lives in Redis, on Redis's own
clock, in two steps per `acquire()` (one Lua call in all when no wait is needed):

1. Pacing (GCRA, "virtual scheduling"): one Lua call reserves the next free slot, `interval`
   after the previous one, and says how long to sleep for it. Slots are spaced evenly, so the
   processes never burst, and nobody polls.
2. Admission (sliding-window log): after the sleep, a second Lua call admits the request only
   if fewer than `rate` requests were admitted in the last `window` seconds, and records it.
   A process that woke up late (a busy machine) is therefore counted when it really sends, and
   cannot squeeze an extra request into a window; it waits for the window to slide instead.

`margin` (default 10%) stretches both the spacing and the window, so that jitter between us
and Prepr (up to ~margin seconds) cannot make Prepr see more than `rate` in one of its windows.

When Prepr answers 429 anyway (another client on the same token), `block(seconds)` stores a
"blocked until" time beside the schedule and every process waits it out before its next slot.

With `redis=None` the same algorithm runs in-process (one process, e.g. `explain --fetch`).

`reserve_in(pipe)` lets a caller that talks to the same Redis anyway (the worker takes the
item's lock just before its GET) carry the Lua call of its thread's next `acquire()` on its own
round trip. The answer is used only while fresh (FRESH seconds): a slot recorded as taken must
be used at once, or Prepr could see requests later, and closer together, than they were counted.
"""
from __future__ import annotations

import collections
import threading
import time
import uuid
from typing import Any, Callable

# The pacing and admission scripts take KEYS: log, blocked, tat.
_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
"""
# ARGV: interval. Reserves the next slot; `slot - now` is the wait before using it.
_SLOT = """
local interval = tonumber(ARGV[1])
local tat = tonumber(redis.call('GET', KEYS[3]) or '0')
local blocked0 = tonumber(redis.call('GET', KEYS[2]) or '0')
local slot = math.max(tat, now, blocked0)
local horizon = slot + interval
redis.call('SET', KEYS[3], string.format('%.0f', horizon), 'PX', math.floor((horizon - now) / 1000) + 1000)
"""
# ARGV: -, window, limit, member. Records one request now if the window has room ('0'), else
# answers the wait in microseconds.
_ADMIT_BODY = """
local window = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%.0f', now - window))
local blocked = tonumber(redis.call('GET', KEYS[2]) or '0')
if blocked > now then return tostring(blocked - now) end
if redis.call('ZCARD', KEYS[1]) >= limit then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return tostring(math.max(1, tonumber(oldest[2]) + window - now))
end
redis.call('ZADD', KEYS[1], string.format('%.0f', now), ARGV[4])
redis.call('PEXPIRE', KEYS[1], math.floor(window / 1000) + 1000)
return '0'
"""
_ADMIT = _NOW + _ADMIT_BODY
# Both steps in one round trip for the common case: when the reserved slot is now, admission is
# tried at once. An answer prefixed "r" is the reservation's wait: sleep, then admit() as usual.
_ACQUIRE = _NOW + _SLOT + "if slot > now then return 'r' .. tostring(slot - now) end" + _ADMIT_BODY

_BLOCK = _NOW + """
local until_us = now + tonumber(ARGV[1])
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if until_us > current then
  redis.call('SET', KEYS[1], string.format('%.0f', until_us), 'PX', math.floor(tonumber(ARGV[1]) / 1000) + 1000)
end
return tostring(math.max(until_us, current) - now)
"""


FRESH = 0.05  # seconds a reserved answer stays usable; well inside the 10% margin of a 1 s window


class RateLimiter:
    """`acquire()` blocks until this caller may send one request; `block(s)` pauses everyone.

    `key` names the budget (one per Prepr environment / token); `rate` is requests per second.
    """

    def __init__(self, redis: object | None, rate: float, key: str = "default", *,
                 margin: float = 0.1, sleep: Callable[[float], None] = time.sleep) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.interval_us = int(1_000_000 * (1.0 + margin) / rate)
        self.window_us = int(1_000_000 * (1.0 + margin))
        self.limit = max(1, int(rate))
        self.redis = redis
        self.keys = [f"prepr:ratelimit:{key}:tat", f"prepr:ratelimit:{key}:blocked", f"prepr:ratelimit:{key}:log"]
        self._keys = [self.keys[2], self.keys[1], self.keys[0]]  # the scripts' order: log, blocked, tat
        self._sleep = sleep
        self._lock = threading.Lock()
        self._tat = 0.0
        self._blocked = 0.0
        self._log: collections.deque[float] = collections.deque()
        self._reserved = threading.local()  # a thread's answer from reserve_in(), with its time
        if redis is not None:
            self._admit = redis.register_script(_ADMIT)  # type: ignore[attr-defined]
            self._block = redis.register_script(_BLOCK)  # type: ignore[attr-defined]
            self._acquire = redis.register_script(_ACQUIRE)  # type: ignore[attr-defined]

    def _reserve_local(self) -> float:
        """In-process pacing (no Redis): reserve the next slot; seconds to wait before using it."""
        with self._lock:
            now = time.monotonic()
            slot = max(self._tat, now, self._blocked)
            self._tat = slot + self.interval_us / 1_000_000
            return slot - now

    def admit(self) -> float:
        """Record one request now if the window has room (0.0); else seconds until it will."""
        if self.redis is None:
            with self._lock:
                now = time.monotonic()
                while self._log and self._log[0] <= now - self.window_us / 1_000_000:
                    self._log.popleft()
                if self._blocked > now:
                    return self._blocked - now
                if len(self._log) >= self.limit:
                    return max(1e-6, self._log[0] + self.window_us / 1_000_000 - now)
                self._log.append(now)
                return 0.0
        waited = self._admit(keys=self._keys, args=[0, self.window_us, self.limit, uuid.uuid4().hex])
        return float(waited) / 1_000_000

    def _acquire_args(self) -> list[Any]:
        return [self.interval_us, self.window_us, self.limit, uuid.uuid4().hex]

    def reserve_in(self, pipe: Any) -> Callable[[Any], None] | None:
        """Queue this thread's next acquire() on `pipe` (a pipeline, or any batch with `eval`, of
        the same Redis); call the returned function with the command's answer once it has run.
        Without Redis (an in-process budget) nothing is queued and None is returned."""
        if self.redis is None:
            return None
        # EVAL, not EVALSHA: a registered script in a pipeline costs a SCRIPT EXISTS round trip
        pipe.eval(_ACQUIRE, len(self._keys), *self._keys, *self._acquire_args())

        def settle(answer: Any) -> None:
            self._reserved.answer = (answer, time.monotonic())
        return settle

    def acquire(self) -> float:
        """Wait for a slot and admission; return how long we waited (seconds)."""
        if self.redis is None:
            waited = self._reserve_local()
            wait = -1.0
        else:  # reserve, and admit when no wait is needed, in one Lua call (or use reserve_in's)
            answer, age = self._take_reserved()
            if answer is None:
                answer = self._acquire(keys=self._keys, args=self._acquire_args())
            answer = answer.decode() if isinstance(answer, bytes) else str(answer)
            reserved = answer.startswith("r")
            waited = max(0.0, float(answer[1:]) / 1_000_000 - age) if reserved else 0.0
            wait = -1.0 if reserved else max(0.0, float(answer) / 1_000_000 - age)
            if not reserved and float(answer) <= 0:
                return 0.0
        if waited > 0:
            self._sleep(waited)
        if wait > 0:
            self._sleep(wait)
            waited += wait
        while (wait := self.admit()) > 0:
            self._sleep(wait)
            waited += wait
        return waited

    def _take_reserved(self) -> tuple[Any, float]:
        """This thread's reserved answer and its age, if still fresh; it is used once either way."""
        pending = getattr(self._reserved, "answer", None)
        if pending is None:
            return None, 0.0
        self._reserved.answer = None
        age = time.monotonic() - pending[1]
        return (pending[0], age) if age <= FRESH else (None, 0.0)

    def block(self, seconds: float) -> float:
        """Nobody sends before `seconds` from now (Prepr said 429); return the block left."""
        seconds = max(0.0, float(seconds))
        if self.redis is None:
            with self._lock:
                self._blocked = max(self._blocked, time.monotonic() + seconds)
                return self._blocked - time.monotonic()
        left = self._block(keys=[self.keys[1]], args=[int(seconds * 1_000_000)])
        return float(left) / 1_000_000

    def blocked_for(self) -> float:
        """Seconds until the current block (if any) ends."""
        if self.redis is None:
            return max(0.0, self._blocked - time.monotonic())
        raw = self.redis.get(self.keys[1])  # type: ignore[attr-defined]
        if not raw:
            return 0.0
        now_s, now_us = self.redis.time()  # type: ignore[attr-defined]
        return max(0.0, (float(raw) - (now_s * 1_000_000 + now_us)) / 1_000_000)
