"""Small store writes that must land even when Redis is briefly unreachable.

An attempt that loses the store after an effect was sent still owes two writes: the record that
the effect is done (so no retry sends it again) and the release of the item's lock (so the next
attempt does not wait out its expiry). They are kept here, in order, and a background thread
sends them as soon as Redis answers again. The order matters: a lock is only released after the
records written before it, so whoever takes the lock next sees them. A process killed before
the store returns leaves the lock to expire (VISIBILITY_TIMEOUT) — the one case left to time.
"""
from __future__ import annotations

import logging
import os
import threading
from collections import deque
from typing import Any, Callable

import redis
from redis.client import Pipeline

log = logging.getLogger("tasks.deferred")
RETRY_EVERY = 0.25
Write = Callable[[Pipeline], Any]

_lock = threading.Lock()
_queue: deque[tuple[redis.Redis, Write]] = deque()
_wake = threading.Event()
_thread: tuple[int, threading.Thread] | None = None


def send(client: redis.Redis, write: Write) -> bool:
    """Run `write` on a pipeline now, or keep it for later; True when it was sent now."""
    with _lock:
        if not _queue:
            try:
                _execute(client, write)
                return True
            except (redis.ConnectionError, redis.TimeoutError):
                pass
        _queue.append((client, write))
        _ensure_thread()
    log.warning("store unreachable: %d write(s) kept until it answers", len(_queue))
    return False


def pending() -> int:
    return len(_queue)


def flush(timeout: float | None = None) -> bool:
    """Wait until everything kept has been sent (for shutdown and tests)."""
    waited = 0.0
    while _queue:
        _wake.set()
        threading.Event().wait(0.05)
        waited += 0.05
        if timeout is not None and waited >= timeout:
            return False
    return True


def _execute(client: redis.Redis, write: Write) -> None:
    with client.pipeline(transaction=False) as pipe:
        write(pipe)
        pipe.execute()


def _ensure_thread() -> None:
    global _thread
    if _thread is None or _thread[0] != os.getpid() or not _thread[1].is_alive():
        thread = threading.Thread(target=_drain, name="deferred-store-writes", daemon=True)
        _thread = (os.getpid(), thread)
        thread.start()


def _drain() -> None:
    global _thread
    while True:
        _wake.wait(RETRY_EVERY)
        _wake.clear()
        with _lock:
            while _queue:
                client, write = _queue[0]
                try:
                    _execute(client, write)
                except (redis.ConnectionError, redis.TimeoutError):
                    break
                except redis.RedisError:
                    log.warning("a kept store write was refused; dropped", exc_info=True)
                _queue.popleft()
            if not _queue:
                _thread = None  # under the lock: the next send() starts a new thread
                log.info("store answers again: kept writes sent")
                return
