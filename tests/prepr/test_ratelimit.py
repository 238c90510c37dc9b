"""The shared rate limiter: spacing, the shared budget in Redis, and the 429 block."""
from __future__ import annotations

import threading
import time

from prepr.ratelimit import RateLimiter


def _grants(limiter: RateLimiter, n: int) -> list[float]:
    out = []
    for _ in range(n):
        limiter.acquire()
        out.append(time.monotonic())
    return out


def test_local_limiter_spaces_requests():
    limiter = RateLimiter(None, rate=50, margin=0.0)
    stamps = _grants(limiter, 26)
    assert stamps[-1] - stamps[0] >= 25 / 50 - 0.01


def test_redis_limiter_is_shared_between_limiters(redis_client):
    # Two limiters (as in two processes) on one key: 40 grants at 40/s take about a second.
    a = RateLimiter(redis_client, rate=40, key="t", margin=0.0)
    b = RateLimiter(redis_client, rate=40, key="t", margin=0.0)
    stamps: list[float] = []
    threads = [threading.Thread(target=lambda l=l: stamps.extend(_grants(l, 20))) for l in (a, b)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(stamps) == 40
    assert time.monotonic() - started >= 39 / 40 - 0.05
    other = RateLimiter(redis_client, rate=40, key="other", margin=0.0)
    quick = time.monotonic()
    _grants(other, 3)
    assert time.monotonic() - quick < 0.2  # another key has its own budget


def test_block_pauses_every_limiter_on_the_key(redis_client):
    a = RateLimiter(redis_client, rate=100, key="blk")
    b = RateLimiter(redis_client, rate=100, key="blk")
    assert 0.9 < a.block(1.0) <= 1.0
    assert 0.5 < b.blocked_for() <= 1.0
    started = time.monotonic()
    b.acquire()
    assert time.monotonic() - started >= 0.85
    assert b.blocked_for() == 0.0


def test_local_block():
    limiter = RateLimiter(None, rate=100)
    limiter.block(0.3)
    started = time.monotonic()
    limiter.acquire()
    assert time.monotonic() - started >= 0.28


def test_retry_after_forms():
    from email.utils import formatdate

    from prepr.client import _retry_after

    assert _retry_after({"Retry-After": "3"}) == 3.0
    assert 8 <= _retry_after({"Retry-After": formatdate(time.time() + 10, usegmt=True)}) <= 10
    assert _retry_after({"Retry-After": "soon"}) is None
    assert _retry_after({"X-Prepr-RateLimit-Reset": "4"}) == 4.0
    assert 5 <= _retry_after({"X-Prepr-RateLimit-Reset": str(int(time.time()) + 6)}) <= 6
    assert _retry_after({}) is None


def test_a_reservation_carried_on_a_pipeline_is_used_once_and_only_while_fresh(redis_client):
    limiter = RateLimiter(redis_client, rate=1000, key="ride", margin=0.0)
    log_key = limiter.keys[2]

    def reserve() -> None:
        time.sleep(0.005)  # the next slot is now, so the reservation is admitted (and recorded) at once
        with redis_client.pipeline(transaction=False) as pipe:
            pipe.ping()
            settle = limiter.reserve_in(pipe)
            settle(pipe.execute()[1])

    reserve()
    assert redis_client.zcard(log_key) == 1
    limiter.acquire()  # uses the reservation: nothing more is recorded
    assert redis_client.zcard(log_key) == 1
    limiter.acquire()  # used once only
    assert redis_client.zcard(log_key) == 2
    reserve()
    time.sleep(0.08)  # stale: its slot was counted too long ago to be sent now
    limiter.acquire()
    assert redis_client.zcard(log_key) == 4
    threading.Thread(target=reserve).start()  # another thread's reservation is not ours
    time.sleep(0.02)
    limiter.acquire()
    assert redis_client.zcard(log_key) == 6


def test_a_reservation_that_must_wait_waits_for_its_slot(redis_client):
    limiter = RateLimiter(redis_client, rate=10, key="ride-wait", margin=0.0)
    limiter.acquire()  # the next slot is 0.1 s away
    with redis_client.pipeline(transaction=False) as pipe:
        settle = limiter.reserve_in(pipe)
        settle(pipe.execute()[0])
    started = time.monotonic()
    limiter.acquire()
    assert 0.07 <= time.monotonic() - started < 0.3
