"""`make fuzz`: the long receiver fuzz: FUZZ_REQUESTS (default 100,000) mutated real deliveries,
over the wire to gunicorn with the Procfile's web flags and a real Redis, answers counted by status.

The mutations are the test suite's (tests/webhooks/mutations.py), from a seeded generator, so a
run can be repeated. Goal: 0 answers of 500 (nor any code outside the contract). Rewrites the
`## Receiver fuzz` section of RESULTS.md. Loopback only, bounded in count. Environment:
BENCH_REDIS_URL (default db 9 of the local Redis; flushed), FUZZ_REQUESTS, FUZZ_SEED.
"""
from __future__ import annotations

import os
import random
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from benchmarks import _report, _serve
from benchmarks.ingest import REDIS_URL

SECRET = "fuzz-signing-key"
REQUESTS = int(os.environ.get("FUZZ_REQUESTS", "100000"))
SEED = int(os.environ.get("FUZZ_SEED", "15"))
CONTRACT = {200, 202, 400, 401, 408, 413, 415}


def main(write=None) -> Counter:  # type: ignore[no-untyped-def]
    import redis

    from tests.conftest import read_deliveries
    from tests.webhooks.deliveries import recent
    from tests.webhooks.mutations import exchange, http_request, mutate

    work = Path(tempfile.mkdtemp(prefix="bench-fuzz-"))
    redis.Redis.from_url(REDIS_URL).flushdb()
    env = {"PREPR_WEBHOOK_SECRETS": SECRET, "CELERY_BROKER_URL": REDIS_URL, "DATA_DIR": str(work)}
    server = _serve.start("fuzz", _serve.PROJECT_APP, env, work / "gunicorn.log")
    deliveries = [recent(raw) for raw in read_deliveries()]
    rng = random.Random(SEED)
    requests = []
    for n in range(REQUESTS):
        body, signature, content_type, framing = mutate(deliveries[n % len(deliveries)], rng, SECRET)
        requests.append((http_request(body, signature, content_type, framing), framing == "short"))
    started = time.monotonic()
    try:
        with ThreadPoolExecutor(8) as pool:
            statuses = Counter(pool.map(lambda r: exchange(server.port, *r), requests, chunksize=64))
    finally:
        server.stop()
    seconds = time.monotonic() - started
    outside = {code: n for code, n in statuses.items() if code not in CONTRACT}
    rows = " | ".join(f"{code or 'closed'}: {n:,}" for code, n in sorted(statuses.items()))
    section = (f"## Receiver fuzz\n\nOne run of `make fuzz` (benchmarks/fuzz.py), {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
               f"seed {SEED}: {REQUESTS:,} requests made from the real deliveries by tests/webhooks/mutations.py "
               f"(fields replaced by odd values, lone surrogates, nesting to 500, 5,000-character ids, byte damage, "
               f"broken chunked framing, short bodies, unsigned and mis-signed), each on its own connection to "
               f"gunicorn with the Procfile's web flags, in {seconds:.0f} s.\n\n"
               f"Answers by status: {rows}.\n\n"
               f"**500s: {statuses.get(500, 0)}**; codes outside the contract: {outside or 'none'}. "
               f"\"closed\" is a connection gunicorn itself closed on a framing error it answers before the app.\n")
    print(section)
    (write or (lambda text: _report.write_section(text, "## Receiver fuzz")))(section)
    return statuses


if __name__ == "__main__":
    main()
