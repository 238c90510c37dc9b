"""One request budget for every process that talks to Prepr, in every window Prepr counts.

Prepr counts requests per token in several windows (35/second, 800/minute, 10,000/hour) and
answers 429 beyond any of them. The budget is written as the `limits` library writes it
(`"33/second;780/minute;9500/hour"`; a bare number means per second) and kept in Redis, so all
processes and threads share it. `acquire()` waits until one more request fits, in two steps:

1. Pacing: one small Lua call (GCRA) hands out the next slot, spaced evenly at the shortest
   window's rate, and says how long to sleep for it. Hand-written because `limits` has no
   spacing strategy: its windows alone let many threads send a whole window at once, and the
   jitter between us and Prepr then shifts a few of them into Prepr's previous window (a 429).
   The period is stretched by JITTER for the same reason: requests delayed unevenly on their
   way cannot crowd one more than the window allows into one of Prepr's.
2. Admission: `limits`' moving-window strategy records the request in every window, or says
   when the full one has room again; then everyone is held back until then, plus JITTER
   (below), and the caller takes a new slot.

`block(seconds)` stores a "nobody before" time beside the schedule (Prepr said 429 with
Retry-After, or a window is full): every process's next slot comes after it.

With `redis=None` the same runs in-process (one process, e.g. `explain --fetch`).
"""
from __future__ import annotations

import threading
import time
from typing import Callable, Sequence

from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage, RedisStorage
from limits.strategies import MovingWindowRateLimiter

JITTER = 0.02  # seconds of uneven delay between our clock and Prepr's counting that pacing absorbs

# KEYS: tat, blocked. ARGV: interval (µs). Reserves the next slot; answers its wait in µs.
_SLOT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
local slot = math.max(tat, now, tonumber(redis.call('GET', KEYS[2]) or '0'))
local horizon = slot + tonumber(ARGV[1])
redis.call('SET', KEYS[1], string.format('%.0f', horizon), 'PX', math.floor((horizon - now) / 1000) + 1000)
return tostring(slot - now)
"""
# KEYS: blocked. ARGV: seconds (µs). Extends the block; answers what is left of it in µs.
_BLOCK = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local until_us = now + tonumber(ARGV[1])
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if until_us > current then
  redis.call('SET', KEYS[1], string.format('%.0f', until_us), 'PX', math.floor(tonumber(ARGV[1]) / 1000) + 1000)
end
return tostring(math.max(until_us, current) - now)
"""


def parse_rate_limit(rate: str | float | Sequence[RateLimitItem]) -> list[RateLimitItem]:
    """Windows from `limits` notation (`"33/second;780/minute"`) or a number per second, shortest
    window first. Raises ValueError with a readable message (a fraction per second is one)."""
    if isinstance(rate, (int, float)):
        rate = f"{rate:g}/second"
    items = parse_many(rate) if isinstance(rate, str) else list(rate)
    if not items or any(item.amount <= 0 for item in items):
        raise ValueError(f"no usable window in {rate!r}")
    return sorted(items, key=lambda item: item.get_expiry())


class RateLimiter:
    """`acquire()` blocks until this caller may send one request; `block(s)` pauses everyone.

    `key` names the budget (one per Prepr token); `rate` is PREPR_RATE_LIMIT's notation, a number
    per second, or parsed `limits` items.
    """

    def __init__(self, redis: object | None, rate: str | float | Sequence[RateLimitItem], key: str = "default", *,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.windows = parse_rate_limit(rate)
        shortest = self.windows[0]
        self.interval_us = int(1_000_000 * (shortest.get_expiry() + JITTER) / shortest.amount)
        self.key = f"prepr:ratelimit:{key}"
        self.redis = redis
        self._sleep = sleep
        self._lock = threading.Lock()
        self._tat = self._blocked = 0.0
        if redis is None:
            self._strategy = MovingWindowRateLimiter(MemoryStorage())
        else:
            storage = RedisStorage("redis://", connection_pool=redis.connection_pool)  # type: ignore[attr-defined]
            self._strategy = MovingWindowRateLimiter(storage)
            self._slot = redis.register_script(_SLOT)  # type: ignore[attr-defined]
            self._block = redis.register_script(_BLOCK)  # type: ignore[attr-defined]
        self._keys = [f"{self.key}:tat", f"{self.key}:blocked"]

    def __repr__(self) -> str:
        return f"RateLimiter({';'.join(str(w) for w in self.windows)!r})"

    def _reserve(self) -> float:
        """Take the next paced slot; seconds to wait before using it."""
        if self.redis is None:
            with self._lock:
                now = time.monotonic()
                slot = max(self._tat, now, self._blocked)
                self._tat = slot + self.interval_us / 1_000_000
                return slot - now
        return float(self._slot(keys=self._keys, args=[self.interval_us])) / 1_000_000

    def _admit(self) -> float:
        """Count one request in every window (0.0), or the seconds until the full one has room.

        Windows are tried shortest first: a request refused by a longer window leaves an entry
        in the shorter ones, which only makes us slower for a moment, never faster than Prepr."""
        for window in self.windows:
            if not self._strategy.hit(window, self.key):
                stats = self._strategy.get_window_stats(window, self.key)
                return max(0.001, stats.reset_time - time.time()) + JITTER
        return 0.0

    def acquire(self) -> float:
        """Wait for a slot that every window admits; return how long we waited (seconds)."""
        waited = 0.0
        while True:
            wait = self._reserve()
            if wait > 0:
                self._sleep(wait)
                waited += wait
                if self.block(0) > 0:  # Prepr said 429 while we slept: queue again behind the block
                    continue
            full = self._admit()
            if not full:
                return waited
            self.block(full)

    def block(self, seconds: float) -> float:
        """Nobody sends before `seconds` from now (Prepr said 429); return the block left."""
        seconds = max(0.0, float(seconds))
        if self.redis is None:
            with self._lock:
                self._blocked = max(self._blocked, time.monotonic() + seconds)
                return self._blocked - time.monotonic()
        return float(self._block(keys=[self._keys[1]], args=[int(seconds * 1_000_000)])) / 1_000_000

    def blocked_for(self) -> float:
        """Seconds until the current block (if any) ends."""
        if self.redis is None:
            return max(0.0, self._blocked - time.monotonic())
        raw = self.redis.get(self._keys[1])  # type: ignore[attr-defined]
        if not raw:
            return 0.0
        now_s, now_us = self.redis.time()  # type: ignore[attr-defined]
        return max(0.0, (float(raw) - (now_s * 1_000_000 + now_us)) / 1_000_000)
