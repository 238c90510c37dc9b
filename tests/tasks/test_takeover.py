"""A worker killed without acknowledging (SIGKILL) has its events taken over by another within
30 s, not the 300 s visibility timeout (tasks.takeover): real Redis, two real workers, the
sandbox slowing every item write so the killed worker holds runs in progress and reserved
ones. Item PUTs are counted per item in the sandbox's request log. Figures: pytest -s."""
from __future__ import annotations

import os
import signal
import time
from collections import Counter

from tests.tasks.conftest import TAG, Service, tag_names

EVENTS = 12


def test_a_sigkilled_workers_events_are_taken_over_within_30s(service: Service) -> None:
    service.rules(TAG)
    env = {"COALESCE_SECONDS": "0", "VISIBILITY_TIMEOUT": "300"}
    doomed = service.start_worker(concurrency=2, **env)
    survivor = service.start_worker(concurrency=2, **env)
    for worker in (doomed, survivor):
        deadline = time.monotonic() + 60
        while "ready." not in worker.log_path.read_text():  # type: ignore[attr-defined]
            assert time.monotonic() < deadline and worker.poll() is None, "a worker did not start"
            time.sleep(0.1)
    items = [i["id"] for i in service.sandbox.client().list_items()][:EVENTS]
    assert len(items) == EVENTS
    service.sandbox.clear_requests()
    service.sandbox.fault("/publications/*", method="PUT", latency_ms=2500, times=None)
    events = [service.send("content_item.changed", item, marker=f"k{n}") for n, item in enumerate(items)]

    held: list[str] = []
    deadline = time.monotonic() + 30
    while len(held) < 2:  # the doomed worker holds runs (its messages name its process)
        assert time.monotonic() < deadline, "the first worker never held two messages"
        owners = {k.decode(): v.decode() for k, v in service.redis.hgetall("unacked_owner").items()}
        held = [tag for tag, name in owners.items() if f"-{doomed.pid}-" in name]
        time.sleep(0.05)
    time.sleep(1.0)  # mid-run: its GETs answered, its PUTs in the sandbox's latency
    os.killpg(doomed.pid, signal.SIGKILL)
    killed = time.monotonic()
    doomed.wait(10)

    traces = [service.wait(e, timeout=120)["run"] for e in events]
    recovered = time.monotonic() - killed
    puts = Counter(c["path"] for c in service.calls(method="PUT"))
    lost = [e for e, t in zip(events, traces) if not t["outcome"].startswith(("done", "no change"))]
    doubled = {path: n for path, n in puts.items() if n > 1}
    print(f"\nSIGKILL takeover: {EVENTS} events, {len(held)} message(s) held by the killed worker; all done "
          f"{recovered:.1f}s after the kill; lost {len(lost)}; item PUTs {sum(puts.values())}, doubled {len(doubled)}")
    assert not lost and not doubled, (lost, doubled)
    assert recovered <= 30, recovered
    for n, item_id in enumerate(items):
        item = service.item(item_id)
        assert f"k{n}" in {t for locale in item["items"] for t in tag_names(item, locale)}
    assert service.redis.hlen("unacked_owner") == 0 and service.redis.zcard("unacked_index") == 0
    assert survivor.poll() is None
    assert "held by worker(s) that stopped answering" in survivor.log_path.read_text()  # type: ignore[attr-defined]
