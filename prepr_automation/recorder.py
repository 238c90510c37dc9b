"""The receiver's history writes, after the answer: envelope, time index, counts, the budget's trim.

The door's atomic step (tasks.messages) does only what correctness needs: the dedupe mark, the
message and the receipt. What the console lists follows here, and under the Procfile's gevent
web it follows in the background: a greenlet takes everything the requests handed it since its
last round trip and writes it in one pipeline (one ZADD for all the index entries, one HINCRBY
per minute and outcome), so a burst costs a few round trips, not two per delivery, and no
delivery waits for it. Without gevent (tests, the CLI) the same write happens in the caller,
after its atomic step. A history write that fails is logged and dropped: the history is for
people, and the event itself is already queued.
"""
from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass
from typing import Any
import redis

from . import compact
from .budget import ENTRY_OVERHEAD, TOTAL, Budget
from .store import trace_key

log = logging.getLogger("prepr_automation.recorder")
MOST = 200  # entries written per round trip at most (a batch blocks its process's other greenlets while it is built)
COUNTS_TTL = 25 * 3600  # the console charts at most the last 24 hours


@dataclass
class Entry:
    event_id: str
    at: float
    status: str  # queued, ignored, stale, duplicate
    envelope: bytes = b""  # packed (prepr_automation.compact); b"" for a duplicate
    record_bytes: int = 0  # the receipt's length, written by the atomic step


def counts_key(ts: float) -> str:
    from .history import counts_key as key  # history imports this module

    return key(ts)


def _gevent_threads() -> bool:
    try:
        from gevent import monkey
    except ImportError:
        return False
    return bool(monkey.is_module_patched("threading"))


# KEYS: index, budget total
# ARGV: trace ttl, counts ttl, n, then n x (trace key, event id, received at, packed envelope|''),
#       then (counts key, status, count) x m, and last the bytes added to the budget's estimate
# One call per batch: the per-event commands run inside Redis, not as many commands sent.
_BATCH = """
local ttl, n = ARGV[1], tonumber(ARGV[3])
for i = 0, n - 1 do
  local at = 4 + i * 4
  if ARGV[at + 3] ~= '' then
    redis.call('HSET', ARGV[at], 'envelope', ARGV[at + 3])
    redis.call('EXPIRE', ARGV[at], ttl)
  end
  redis.call('ZADD', KEYS[1], ARGV[at + 2], ARGV[at + 1])
end
for i = 4 + n * 4, #ARGV - 1, 3 do
  redis.call('HINCRBY', ARGV[i], ARGV[i + 1], ARGV[i + 2])
  redis.call('EXPIRE', ARGV[i], ARGV[2])
end
if tonumber(ARGV[#ARGV]) > 0 then redis.call('INCRBY', KEYS[2], ARGV[#ARGV]) end
"""


class Recorder:
    def __init__(self, client: redis.Redis, budget: Budget, trace_ttl: int, background: bool | None = None) -> None:
        self.client, self.budget, self.trace_ttl = client, budget, trace_ttl
        self._script = client.register_script(_BATCH)
        self.background = _gevent_threads() if background is None else background
        self._queue: queue.Queue[Entry] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def add(self, event_id: str, at: float, status: str, envelope: bytes | str = b"", record_bytes: int = 0) -> None:
        entry = Entry(event_id, at, status, compact.pack(envelope) if envelope else b"", record_bytes)
        if not self.background:
            self._write([entry])
            return
        self._queue.put(entry)
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="history-recorder", daemon=True)
                    self._thread.start()

    def _run(self) -> None:
        while True:
            entries = [self._queue.get()]
            while len(entries) < MOST:
                try:
                    entries.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            self._write(entries)

    def _write(self, entries: list[Entry]) -> None:
        from .history import INDEX

        counts: dict[tuple[str, str], int] = {}
        args: list[Any] = [self.trace_ttl, COUNTS_TTL, 0]
        added = 0
        for e in entries:
            bucket = (counts_key(e.at), e.status)
            counts[bucket] = counts.get(bucket, 0) + 1
            if e.status != "duplicate":
                args += [trace_key(e.event_id), e.event_id, e.at, e.envelope]
                added += ENTRY_OVERHEAD + e.record_bytes + len(e.envelope)
        args[2] = (len(args) - 3) // 4
        for (key, status), n in counts.items():
            args += [key, status, n]
        try:
            with self.client.pipeline(transaction=False) as pipe:
                self._script(keys=[INDEX, TOTAL], args=[*args, added], client=pipe)
                self.budget.trim(pipe)
                pipe.execute()
        except redis.RedisError as exc:  # the events are queued; only their listing is lost
            log.warning("history of %d event(s) not recorded: %s", len(entries), type(exc).__name__)

    def flush(self, timeout: float = 5.0) -> None:
        """Wait until what was handed over is written (tests, and a process about to stop)."""
        import time

        deadline = time.monotonic() + timeout
        while self.background and not self._queue.empty() and time.monotonic() < deadline:
            time.sleep(0.01)

