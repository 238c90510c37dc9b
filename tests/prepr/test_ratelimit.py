"""The shared rate limiter: every window of the budget, shared in Redis, and the 429 block."""
from __future__ import annotations

import sys
import textwrap
import threading
import time

import pytest

from prepr.ratelimit import RateLimiter, parse_rate_limit
from prepr_automation.settings import ConfigError, load_settings


def _grants(limiter: RateLimiter, n: int) -> list[float]:
    out = []
    for _ in range(n):
        limiter.acquire()
        out.append(time.time())
    return out


def _busiest(stamps: list[float], seconds: float) -> int:
    """The most requests in any window of `seconds` (moving, as Prepr counts)."""
    stamps = sorted(stamps)
    return max(sum(1 for t in stamps[i:] if t < start + seconds) for i, start in enumerate(stamps))


@pytest.mark.parametrize("raw, windows", [
    ("30", ["30 per 1 second"]),
    ("33/second;780/minute;9500/hour", ["33 per 1 second", "780 per 1 minute", "9500 per 1 hour"]),
    ("780/minute; 33/second", ["33 per 1 second", "780 per 1 minute"]),
    ("5/2seconds", ["5 per 2 second"]),
])
def test_budget_notation(raw, windows):
    setting = load_settings({"PREPR_RATE_LIMIT": raw}).rate_limit
    assert [str(w) for w in parse_rate_limit(setting)] == windows


@pytest.mark.parametrize("raw", ["12.5", "0", "fast", "0/second", "33/fortnight"])
def test_a_malformed_budget_names_the_variable(raw):
    with pytest.raises(ConfigError, match="^PREPR_RATE_LIMIT is malformed"):
        load_settings({"PREPR_RATE_LIMIT": raw})


def test_the_default_is_under_every_published_window():
    windows = {w.get_expiry(): w.amount for w in parse_rate_limit(load_settings({}).rate_limit)}
    assert windows.keys() == {1, 60, 3600}
    assert windows[1] < 35 and windows[60] < 800 and windows[3600] < 10_000


def test_local_limiter_spaces_requests():
    stamps = _grants(RateLimiter(None, "50/second"), 26)
    assert stamps[-1] - stamps[0] >= 25 / 50 - 0.01


def test_every_window_holds_across_limiters_sharing_redis(redis_client):
    # Two limiters (as in two processes) on one key; the 2-second window binds after 1.5 s.
    limiters = [RateLimiter(redis_client, "20/second;30/2seconds", key="t") for _ in range(2)]
    stamps: list[float] = []
    threads = [threading.Thread(target=lambda l=l: stamps.extend(_grants(l, 20))) for l in limiters]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(stamps) == 40
    # stamped after acquire() returns, so a thread's stamp may lag its admission by a few ms
    assert _busiest(stamps, 0.95) <= 20 and _busiest(stamps, 1.95) <= 30
    assert max(stamps) - min(stamps) >= 2.0  # the 31st request waited for the 2-second window
    other = RateLimiter(redis_client, "20/second;30/2seconds", key="other")
    quick = time.monotonic()
    _grants(other, 3)
    assert time.monotonic() - quick < 0.5  # another key has its own budget


def test_block_pauses_every_limiter_on_the_key(redis_client):
    a = RateLimiter(redis_client, "100/second", key="blk")
    b = RateLimiter(redis_client, "100/second", key="blk")
    assert 0.9 < a.block(1.0) <= 1.0
    assert 0.5 < b.blocked_for() <= 1.0
    started = time.monotonic()
    b.acquire()
    assert time.monotonic() - started >= 0.85
    assert b.blocked_for() == 0.0


def test_a_block_set_while_waiting_for_a_slot_holds_the_waiter(redis_client):
    slow = RateLimiter(redis_client, "2/second", key="late")
    slow.acquire()  # the next slot is half a second away
    threading.Timer(0.2, lambda: slow.block(1.0)).start()
    started = time.monotonic()
    slow.acquire()
    assert time.monotonic() - started >= 1.1


def test_local_block():
    limiter = RateLimiter(None, "100/second")
    limiter.block(0.3)
    started = time.monotonic()
    limiter.acquire()
    assert time.monotonic() - started >= 0.28


WORKER = textwrap.dedent("""
    import sys, redis
    from prepr import PreprClient, RateLimiter
    from prepr.errors import PreprRateLimited
    url, token, redis_url, budget, calls = sys.argv[1:6]
    client = PreprClient(url, token, rate_limiter=RateLimiter(redis.Redis.from_url(redis_url), budget, key="shared"))
    done = 0
    while done < int(calls):
        try:
            client.request("GET", "/tags", params={"limit": 1})
            done += 1
        except PreprRateLimited:
            pass
""")


def _run_workers(sandbox, redis_url, processes, budget: str, calls: int) -> list[dict]:
    procs = [processes.start([sys.executable, "-c", WORKER, sandbox.url, sandbox.token, redis_url, budget,
                              str(calls)], {}, f"worker-{n}") for n in range(4)]
    for proc in procs:
        assert proc.wait(60) == 0, proc.log_path.read_text()
    return sandbox.requests(path="/tags")


@pytest.mark.slow
def test_four_processes_keep_every_window_of_a_remote_prepr(sandbox, redis_url, processes):
    """Prepr (the sandbox in remote mode) counts 9/s and 22 per 3 s; the budget sits just under."""
    sandbox.admin("PUT", "remote", {"latency_ms": 100, "rate_limit": "9/second;22/3seconds"})
    log = _run_workers(sandbox, redis_url, processes, "8/second;20/3seconds", 12)
    stamps = [r["timestamp"] for r in log]
    assert [r["status"] for r in log].count(429) == 0
    assert len(stamps) == 48
    busiest = _busiest(stamps, 1.0), _busiest(stamps, 3.0)
    print(f"4x12 calls: busiest second {busiest[0]}, busiest 3 s {busiest[1]}, span {max(stamps) - min(stamps):.2f}s")
    assert busiest[0] <= 9 and busiest[1] <= 22
    assert busiest[1] >= 18  # and the budget is actually used
    assert max(stamps) - min(stamps) >= 6.0  # 48 calls need three 3-second windows


@pytest.mark.slow
def test_a_429_holds_back_every_process_until_retry_after(sandbox, redis_url, processes):
    sandbox.admin("PUT", "remote", {"latency_ms": 100})
    sandbox.fault("/tags", 429, retry_after=2, times=1)
    log = _run_workers(sandbox, redis_url, processes, "20/second", 6)
    refused = [r["timestamp"] for r in log if r["status"] == 429]
    assert len(refused) == 1 and sum(r["status"] == 200 for r in log) == 24
    # Requests already sent when the 429 came back may arrive; none is sent until Retry-After has passed.
    answered = refused[0] + 0.1
    early = [round(r["timestamp"] - answered, 3) for r in log if answered + 0.15 < r["timestamp"] < answered + 1.95]
    assert early == [], f"sent during the block: {early}"
    assert max(r["timestamp"] for r in log) >= answered + 2.0
