"""Coalesced runs through a Redis stall (SIGSTOP, ~8 s, SIGCONT) and a Redis kill + restart,
with real processes: a redis-server of the test's own, the sandbox, a real worker.

Events stream over a few items faster than the window (COALESCE_SECONDS=2) and item writes
are slowed, so when Redis stops, runs are in every step of the coalescing flow: events
joining, runs scheduled, delayed runs checking their window, runs under way. Afterwards every
event enqueued has a final outcome and its change on the item (0 lost), and no item was
written more often than its runs say they wrote it (0 doubled). Figures: pytest -s."""
from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path

import pytest
import redis

from tests.conftest import Processes, free_port
from tests.tasks.conftest import EDITOR, TAG, Service, tag_names
from tests.tasks.test_outage import _redis_server
from webhooks.intake import BrokerUnavailable, Intake

EVENTS, ITEMS = 120, 12


@pytest.mark.parametrize("pool,concurrency", [("prefork", 4), ("threads", 8)])
@pytest.mark.parametrize("fault", ["stall", "restart"])
def test_coalesced_runs_lose_nothing_and_write_nothing_twice_when_redis_stops(
        service: Service, processes: Processes, tmp_path: Path, fault: str, pool: str, concurrency: int) -> None:
    port = free_port()
    server = _redis_server(processes, tmp_path / "redis", port)
    url = f"redis://127.0.0.1:{port}/0"
    service.redis_url, service.redis = url, redis.Redis.from_url(url)
    service.rules(TAG)
    worker = service.start_worker(concurrency=concurrency, pool=pool, COALESCE_SECONDS="2")
    deadline = time.monotonic() + 60
    while "ready." not in worker.log_path.read_text():  # type: ignore[attr-defined]
        assert time.monotonic() < deadline and worker.poll() is None, "the worker did not start"
        time.sleep(0.1)
    items = [i["id"] for i in service.sandbox.client().list_items()][:ITEMS]
    service.sandbox.clear_requests()
    service.sandbox.fault("/publications/*", method="PUT", latency_ms=1000, times=None)
    intake = Intake(redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=0.5), 3600, 3600)
    sent: list[dict] = []

    def deliver() -> None:  # as Prepr does: a refused delivery is sent again a moment later
        for n in range(EVENTS):
            envelope = {"id": str(uuid.uuid4()), "event": "content_item.changed", "created_on": int(time.time()),
                        "performed_by": EDITOR, "payload": {"id": items[n % ITEMS], "marker": f"m{n}"}}
            while True:
                try:
                    assert intake.accept(envelope, "queued") in ("queued", "duplicate")
                    break
                except (BrokerUnavailable, redis.RedisError):
                    time.sleep(0.2)
            sent.append(envelope)
            time.sleep(0.05)

    sender = threading.Thread(target=deliver)
    sender.start()
    time.sleep(2.5)  # events joined, runs scheduled, windows checked, runs under way
    stopped = time.monotonic()
    if fault == "stall":
        os.kill(server.pid, signal.SIGSTOP)
        time.sleep(8)
        os.kill(server.pid, signal.SIGCONT)
    else:
        processes.stop(server, signal.SIGKILL)  # the append-only file, synced on every write, keeps it all
        time.sleep(4)
        server = _redis_server(processes, tmp_path / "redis", port)
    resumed = time.monotonic()
    sender.join(90)
    assert len(sent) == EVENTS

    final: dict[str, dict] = {}
    deadline = time.monotonic() + 150
    while len(final) < EVENTS and time.monotonic() < deadline:
        for envelope in sent:
            if envelope["id"] not in final:
                run = service.trace(envelope["id"]).get("run") or {}
                if run.get("outcome", "").startswith(("done", "no change", "dead-lettered")):
                    final[envelope["id"]] = run
        time.sleep(0.3)
    done_after = time.monotonic() - resumed
    lost = [e["id"] for e in sent if not (final.get(e["id"]) or {}).get("outcome", "").startswith(("done", "no change"))]
    puts = Counter(c["path"].rsplit("/", 1)[-1] for c in service.calls(method="PUT"))
    writing_runs: dict[str, set] = defaultdict(set)  # run attempts whose trace says they sent the item's PUT
    for envelope in sent:
        run = final.get(envelope["id"]) or {}
        if any(p.get("kind") == "put" and p.get("sent") for p in run.get("planned") or []):
            writing_runs[envelope["payload"]["id"]].add((run["run_id"], run["started"]))
    doubled = {item: n - len(writing_runs[item]) for item, n in puts.items() if n > len(writing_runs[item])}
    missing = []
    for n, envelope in enumerate(sent):
        item = service.item(envelope["payload"]["id"])
        if envelope["payload"]["marker"] not in {t for locale in item["items"] for t in tag_names(item, locale)}:
            missing.append(envelope["id"])
    runs = len({r["run_id"] for r in final.values()})
    print(f"\n{pool} x{concurrency}, Redis {fault} ({resumed - stopped:.1f}s) mid-coalescing: {EVENTS} events in {runs} runs; lost {len(lost)}; "
          f"changes missing {len(missing)}; item PUTs {sum(puts.values())}, doubled {sum(doubled.values())}; "
          f"all final {done_after:.1f}s after Redis was back")
    assert worker.poll() is None, "the worker survives"
    assert not lost and not missing, (lost, missing, [final.get(e) for e in lost[:3]])
    assert not doubled, doubled
    deadline = time.monotonic() + 15  # the last runs resign just after writing their traces
    while service.redis.zcard("pa:coalesce:items") or service.redis.keys("pa:leader:*"):
        assert time.monotonic() < deadline, "a claim outlived its run"
        time.sleep(0.2)
