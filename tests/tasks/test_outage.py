"""The store and broker (Redis) stopped for seconds while events are in flight, then restarted:
nothing lost, no effect sent twice (tracked events counted in the sandbox), no long stall.

The test runs a redis-server of its own (on a free port, data in tmp, append-only file synced
on every write), never the shared one. Figures are printed (pytest -s shows them)."""
from __future__ import annotations

import subprocess
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
import redis

from tests.conftest import Processes, free_port
from tests.tasks.conftest import EDITOR, TRACK, Service, tag_names
from webhooks.intake import BrokerUnavailable, Intake

EVENTS, ITEMS, OUTAGE = 150, 30, 6.0


def _redis_server(processes: Processes, data: Path, port: int) -> subprocess.Popen:
    data.mkdir(exist_ok=True)
    proc = processes.start(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data),
                            "--appendonly", "yes", "--appendfsync", "always", "--save", ""], {}, f"redis-{port}")
    client = redis.Redis(port=port, socket_connect_timeout=0.5)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            return proc
        except redis.RedisError:
            assert time.monotonic() < deadline and proc.poll() is None, "redis-server did not start"
            time.sleep(0.05)


@pytest.mark.parametrize("pool,concurrency", [("prefork", 4), ("threads", 16)])
def test_redis_outage_loses_nothing_sends_nothing_twice_and_does_not_stall(service: Service, processes: Processes,
                                                                          tmp_path: Path, pool: str,
                                                                          concurrency: int) -> None:
    port = free_port()
    server = _redis_server(processes, tmp_path / "redis", port)
    url = f"redis://127.0.0.1:{port}/0"
    service.redis_url, service.redis = url, redis.Redis.from_url(url)
    service.rules(TRACK)
    worker = service.start_worker(concurrency=concurrency, pool=pool)
    deadline = time.monotonic() + 60  # a worker running before the outage, as in production
    while "ready." not in worker.log_path.read_text():  # type: ignore[attr-defined]
        assert time.monotonic() < deadline and worker.poll() is None, "the worker did not start"
        time.sleep(0.1)
    items = [i["id"] for i in service.sandbox.client().list_items()][:ITEMS]
    assert len(items) == ITEMS
    intake = Intake(redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=0.5), 3600, 3600)
    sent: list[dict] = []

    def deliver() -> None:  # as Prepr does: a delivery refused (503) is sent again a moment later
        for n in range(EVENTS):
            envelope = {"id": str(uuid.uuid4()), "event": "content_item.changed", "created_on": int(time.time()),
                        "performed_by": EDITOR, "payload": {"id": items[n % ITEMS], "marker": f"m{n}"}}
            while True:
                try:
                    assert intake.accept(envelope, "queued") in ("queued", "duplicate")
                    break
                except BrokerUnavailable:
                    time.sleep(0.2)
            sent.append(envelope)
            time.sleep(0.04)

    sender = threading.Thread(target=deliver)
    sender.start()
    time.sleep(2.0)  # events queued and in flight
    processes.stop(server)  # SIGTERM: Redis shuts down (the append-only file holds every write)
    stopped = time.monotonic()
    time.sleep(OUTAGE)
    server = _redis_server(processes, tmp_path / "redis", port)
    restarted = time.monotonic()
    sender.join(60)
    assert len(sent) == EVENTS

    finished: dict[str, float] = {}
    deadline = time.monotonic() + 120
    while len(finished) < EVENTS and time.monotonic() < deadline:
        for envelope in sent:
            if envelope["id"] not in finished:
                outcome = (service.trace(envelope["id"]).get("run") or {}).get("outcome", "")
                if outcome.startswith(("done", "no change", "dead-lettered")):
                    finished[envelope["id"]] = time.monotonic()
        time.sleep(0.2)
    outcomes = Counter((service.trace(e["id"]).get("run") or {}).get("outcome", "none").split(":")[0] for e in sent)
    tracked = Counter(e["body"]["customer"] for e in service.sandbox.tracked_events())
    lost = [e["id"] for e in sent if tracked[e["id"]] == 0]
    doubled = [c for c, n in tracked.items() if n > 1]
    last = max(finished.values(), default=restarted) - restarted
    after = sorted(t for t in finished.values() if t > restarted)
    gap = max((b - a for a, b in zip([restarted] + after, after)), default=0.0)
    print(f"\n{pool} x{concurrency}: outage {restarted - stopped:.1f}s; {EVENTS} events; outcomes {dict(outcomes)}; tracked "
          f"{sum(tracked.values())}; lost {len(lost)}; doubled {len(doubled)}; all done {last:.1f}s after the restart; "
          f"longest pause between completions after it {gap:.1f}s")
    assert worker.poll() is None, "the worker survives the outage"
    assert not lost and not doubled, (lost, doubled)
    assert len(finished) == EVENTS and outcomes["done"] == EVENTS
    for n, item_id in enumerate(items):
        item = service.item(item_id)
        tags = {t for locale in item["items"] for t in tag_names(item, locale)}
        assert {f"m{k}" for k in range(n, EVENTS, ITEMS)} <= tags
    # no stall: an attempt cut off by the outage never waits out a lock (30 s) or a visibility timeout (300 s)
    assert gap < 10 and last < 45, (gap, last)
