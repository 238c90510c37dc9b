"""Ingest benchmark: the project's receiver against bare baselines, side by side, in one run.

The machine this runs on is small and shared, so absolute numbers drift; what is reported is
the ratio between targets served at the same time. Every target is up during the whole run and
the load visits them in turn, ROUNDS times, so drift hits all of them alike. Each target gets the
same pre-signed unique deliveries (the real captured ones, ids made unique), and after every load
the 202 answers are counted against the messages on the broker: a receiver that answers faster by
losing messages is caught.

Environment: BENCH_REDIS_URL (default db 9 of the local Redis; flushed before every load; its
targets are skipped when it is not reachable), BENCH_ROUNDS, BENCH_WARMUP, BENCH_SECONDS.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import redis

from benchmarks import _load, _report, _serve, baselines
from webhooks.signature import sign

SECRET = "benchmark-signing-key"
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9")
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "2"))
WARMUP = float(os.environ.get("BENCH_WARMUP", "1"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "5"))
PROCESSES, CONNECTIONS = 2, 8   # 16 in flight: the Procfile's 2 workers x 8 threads, kept busy
COPIES = 3                      # 3 x 14,256 unique deliveries: more than any target answers in a load


@dataclass
class Target:
    name: str
    app_spec: str
    env: dict[str, str]
    broker: str | None            # where its messages land, None for the bare baseline
    queue: str | None
    server: _serve.Server | None = None
    runs: list[_load.Outcome] = field(default_factory=list)
    on_broker: list[int] = field(default_factory=list)  # messages found after each load

    def store(self) -> redis.Redis | None:
        if self.broker is None:
            return None
        return redis.Redis.from_url(self.broker.replace("redis+socket://", "unix://"))


def deliveries() -> Iterator[bytes]:
    """The captured deliveries; a synthetic stand-in when the fixtures are not next to the project."""
    try:
        from tests.conftest import read_deliveries
        yield from read_deliveries()
    except (ImportError, FileNotFoundError):
        for n in range(14_256):
            yield json.dumps({"id": f"synthetic-{n}", "event": "content_item.changed",
                              "created_on": 1644162928, "payload": {"id": f"item-{n}", "tags": None}}).encode()


def requests() -> list[bytes]:
    """Whole HTTP requests, each a delivery with a unique id and a recent created_on (the captured
    ones are older than the dedupe window: the door would answer them "stale"), signed as Prepr signs."""
    out = []
    now = int(time.time())
    for copy in range(COPIES):
        for raw in deliveries():
            envelope = json.loads(raw)
            envelope["id"] = f"{envelope['id']}.{copy}"
            envelope["created_on"] = now
            body = json.dumps(envelope, separators=(",", ":")).encode()
            out.append(b"POST /webhooks/prepr HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                       b"Content-Type: application/json\r\nPrepr-Signature: " + sign(body, SECRET).encode()
                       + b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    return out


# Every delivery enqueued, as the baselines do: the project's own rules/ would answer a quarter of
# the captured events "ignored" (no message), a cheaper path that would flatter the project.
RULES_ALL = """version: 1
rules:
  - id: listen-to-everything
    description: the ingest benchmark queues every event
    on: "*"
    stop: true
    do: []
"""


def targets(embedded_url: str, data_dir: str, redis_up: bool) -> list[Target]:
    base = "benchmarks.baselines:"
    rules = Path(data_dir) / "rules.yaml"
    rules.write_text(RULES_ALL)
    project_env = {"PREPR_WEBHOOK_SECRETS": SECRET, "DATA_DIR": data_dir, "RULES_PATH": str(rules)}
    out = [Target("(a) bare Flask + HMAC", base + "bare()", {"BENCH_SECRET": SECRET}, None, None)]
    brokers = ([("Redis", REDIS_URL)] if redis_up else []) + [("embedded", embedded_url)]
    for label, url in brokers:
        bench_env = {"BENCH_SECRET": SECRET, "BENCH_BROKER": url}
        out += [
            Target(f"(b) + LPUSH, {label}", base + "lpush()", bench_env, url, baselines.LIST_KEY),
            Target(f"(c) + Celery send_task, {label}", base + "celery()", bench_env, url, baselines.CELERY_QUEUE),
            Target(f"project, {label}", _serve.PROJECT_APP,
                   {**project_env, **({"CELERY_BROKER_URL": url} if label == "Redis" else {})}, url, "celery"),
        ]
    return out


def _redis_reachable() -> bool:
    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


def load(target: Target, reqs: list[bytes]) -> None:
    """One load on one target, with the loss check that follows it."""
    client = target.store()
    if client is not None:
        client.flushdb()
    assert target.server is not None
    outcome = _load.run("127.0.0.1", target.server.port, reqs, PROCESSES, CONNECTIONS, WARMUP, SECONDS)
    target.runs.append(outcome)
    if client is not None and target.queue is not None:
        target.on_broker.append(client.llen(target.queue))
    rate = outcome.measured / outcome.seconds if outcome.seconds else 0.0
    print(f"  {target.name:<34} {rate:8.0f} req/s  p99 {_load.percentile(outcome.latencies, 99):6.1f} ms"
          f"  202s {outcome.queued}", flush=True)


def main(write: Callable[[str], None] | None = None) -> list[dict[str, object]]:
    """Run every target, print the table and rewrite the `## Ingest` section of RESULTS.md."""
    from prepr_automation import store

    described = _report.machine()  # before the load, so its load average is the machine's own
    work = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    data_dir = str(work / "data")
    embedded_url = store.ensure_embedded(data_dir)
    redis_up = _redis_reachable()
    if not redis_up:
        print(f"ingest: no Redis at {REDIS_URL}; running the embedded-broker targets only")
    print(f"ingest: signing {COPIES} x the captured deliveries ...", flush=True)
    reqs = requests()
    all_targets = targets(embedded_url, data_dir, redis_up)
    try:
        for target in all_targets:
            target.server = _serve.start(target.name, target.app_spec, target.env, work / "gunicorn.log")
        for round_no in range(ROUNDS):
            print(f"ingest: round {round_no + 1}/{ROUNDS}, {WARMUP:g} s warm-up + {SECONDS:g} s each", flush=True)
            for target in all_targets:
                load(target, reqs)
    finally:
        for target in all_targets:
            if target.server is not None:
                target.server.stop()
        store.stop_embedded(data_dir)
    rows = _report.summarise(all_targets)
    section = _report.section(rows, described, redis_up, ROUNDS, WARMUP, SECONDS, PROCESSES * CONNECTIONS, len(reqs))
    print(section)
    (write or _report.write_section)(section)
    shutil.rmtree(work, ignore_errors=True)
    return rows


if __name__ == "__main__":
    main()
