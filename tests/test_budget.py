"""The history's budget (prepr_automation.budget) and its compact form, against the real Redis:
the oldest history goes first, nothing else ever does; packed fields read back as written."""
from __future__ import annotations

import gzip
import json
import uuid

import pytest
import redis

from benchmarks._corpus import FIXTURE
from prepr_automation import budget, compact, history, store
from tasks.traces import TraceWriter
from webhooks.intake import Delivery, Intake

BUDGET = 200_000


def _delivery(n: int) -> Delivery:
    envelope = {"id": f"ev-{n:05d}-{uuid.uuid4().hex[:6]}", "event": "content_item.changed", "created_on": 1,
                "payload": {"id": f"item-{n}", "label": "Post", "body": "x" * 300, "tags": None}}
    raw = json.dumps(envelope).encode()
    return Delivery(json.loads(raw), raw)


def test_the_oldest_history_goes_first_and_nothing_else(redis_client: redis.Redis) -> None:
    others = {"pa:lock:publication:1": "token", "pa:effects:ev-1": "sent", "pa:dead:abc": "{}",
              "pa:pending-env:publication:1": "{}", "pa:leader:publication:1": "ev-1"}
    for key, value in others.items():
        redis_client.set(key, value)
    intake = Intake(redis_client, 3600, 3600, history_max_bytes=BUDGET, background=False)
    traces = TraceWriter(redis_client, 3600, [], history_max_bytes=BUDGET)
    ids = []
    for n in range(600):
        delivery = _delivery(n)
        assert intake.accept(delivery, "queued") == "queued"
        traces.write(delivery["id"], "run", {"outcome": "done: 1 call(s) sent", "attempt": 1, "calls": [
            {"method": "PUT", "path": f"/content_items/item-{n}", "status": 200, "ms": 12.0}]})
        ids.append(delivery["id"])
    listed = [m.decode() for m in redis_client.zrange(history.INDEX, 0, -1)]
    assert 0 < len(listed) < 600 and listed == ids[-len(listed):]  # the newest kept, in order
    assert int(redis_client.get(budget.TOTAL)) <= BUDGET
    assert store.read_trace(redis_client, ids[0]) is None and store.read_trace(redis_client, ids[-1])["run"]
    assert redis_client.llen("celery") == 600  # every queued message is still there
    assert all(redis_client.exists(store.seen_key(event_id)) for event_id in ids)  # dedupe marks all kept
    assert all(redis_client.get(key) == value.encode() for key, value in others.items())
    traced = sum(1 for _ in redis_client.scan_iter(store.trace_key("*"), count=1000))
    assert traced == len(listed)  # no trace outside the index, where the budget could not see it


def test_making_room_removes_history_only(redis_client: redis.Redis) -> None:
    intake = Intake(redis_client, 3600, 3600, background=False)
    for n in range(20):
        intake.accept(_delivery(n), "ignored")
    assert intake.budget.make_room() == 20
    assert redis_client.zcard(history.INDEX) == 0 and not redis_client.exists(budget.TOTAL)
    assert sum(1 for _ in redis_client.scan_iter(store.seen_key("*"))) == 20


def test_room_reports_memory_and_connections(redis_client: redis.Redis) -> None:
    figures = budget.room(redis_client)
    assert set(figures) == {"full", "used", "maxmemory", "clients", "maxclients"}
    assert figures["used"] > 0 and figures["clients"] >= 1 and figures["maxclients"] > figures["clients"]
    assert budget.describe({**figures, "full": True, "maxmemory": 25 * 1024 ** 2}).startswith("Redis full: ")


def test_packed_values_read_back_and_are_smaller() -> None:
    if not FIXTURE.exists():
        pytest.skip(f"no corpus at {FIXTURE}")
    with gzip.open(FIXTURE, "rb") as handle:
        bodies = [line.strip() for _, line in zip(range(2000), handle)]
    packed = [compact.pack(body) for body in bodies]
    assert all(compact.unpack(p) == b for p, b in zip(packed, bodies))
    assert sum(map(len, packed)) < 0.45 * sum(map(len, bodies))
    assert compact.unpack(b'{"plain": 1}') == b'{"plain": 1}' and compact.pack(b"{}") == b"{}"
