"""Which WEB_CONCURRENCY x WEB_CONNECTIONS to run the receiver with: a sweep, not part of `make bench`.

Run `python -m benchmarks._concurrency` (a few minutes). Each combination serves the project's
web exactly as the Procfile does, takes the ingest benchmark's load (16 keep-alive connections,
then a 64-connection burst) and reports req/s, p50, p99 and memory (PSS: shared pages are counted
once across the workers, as RSS would not). Results go to stdout as a
Markdown table, for docs/performance.md.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import redis

from benchmarks import _load, _serve, ingest

GRID = [(w, c) for w in (1, 2, 3, 4) for c in (100, 1000)]  # gevent: connections held per process
LOADS = (16, 64)  # connections in flight: a steady stream, then a bulk-trigger burst
SECONDS = float(os.environ.get("BENCH_SECONDS", "4"))


def pss_mb(root: int) -> float:
    """Proportional set size of the arbiter and its workers, in MB (Linux; 0 elsewhere)."""
    pids = [root] + [int(p) for p in subprocess.run(["pgrep", "-P", str(root)], capture_output=True,
                                                    text=True).stdout.split()]
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def main() -> None:
    if not ingest._redis_reachable():
        sys.exit(f"no Redis at {ingest.REDIS_URL}")
    reqs = ingest.requests()
    work = Path(tempfile.mkdtemp(prefix="bench-concurrency-"))
    client = redis.Redis.from_url(ingest.REDIS_URL)
    print("| WEB_CONCURRENCY | WEB_CONNECTIONS | " + " | ".join(
        f"{c} conn req/s | {c} conn p50 ms | {c} conn p99 ms" for c in LOADS) + " | PSS MB |")
    print("|---:|---:|" + "---:|---:|---:|" * len(LOADS) + "---:|")
    for workers, connections_held in GRID:
        os.environ.update(WEB_CONCURRENCY=str(workers), WEB_CONNECTIONS=str(connections_held))
        env = {"PREPR_WEBHOOK_SECRETS": ingest.SECRET, "DATA_DIR": str(work),
               "CELERY_BROKER_URL": ingest.REDIS_URL}
        server = _serve.start(f"{workers}x{connections_held}", _serve.PROJECT_APP, env, work / "gunicorn.log")
        cells = []
        try:
            for connections in LOADS:
                client.flushdb()
                processes = 2 if connections <= 16 else 4
                out = _load.run("127.0.0.1", server.port, reqs, processes, connections // processes, 1, SECONDS)
                rate = out.measured / out.seconds if out.seconds else 0.0
                bad = out.measured_non2xx + out.errors
                cells.append(f"{rate:,.0f}{' (%d non-2xx)' % bad if bad else ''} | "
                             f"{_load.percentile(out.latencies, 50):.1f} | {_load.percentile(out.latencies, 99):.1f}")
            memory = pss_mb(server.proc.pid)
        finally:
            server.stop()
        print(f"| {workers} | {connections_held} | " + " | ".join(cells) + f" | {memory:.0f} |", flush=True)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
