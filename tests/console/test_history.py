"""The event index and counts (prepr_automation.history) against the real Redis, written the way
the receiver and the worker write them."""
from __future__ import annotations

import json
import time
import uuid

import pytest
import redis

from prepr_automation import history, store
from tasks.traces import TraceWriter
from webhooks.intake import Delivery, Intake


@pytest.mark.parametrize("outcome, family", [
    ("done: 2 call(s) sent", "done"), ("no change", "no change"), ("no rule matched", "no rule matched"),
    ("dead-lettered: request refused (letter 1a2b)", "dead-lettered"), ("retrying in 1.2s", "retrying"),
    ("waiting: item busy", "waiting"), ("dry run: 1 call(s) planned, none sent", "dry run"),
    ("skipped: performed by the automation", "skipped"), ("merged into run 4f2a9c01", "merged"),
    ("ignored: the payload has no item id", "ignored"), ("", "other"), ("Weird 42", "other"),
])
def test_outcome_families(outcome: str, family: str) -> None:
    assert history.kind(outcome) == family


def _envelope(event: str = "content_item.changed", item: str = "item-1") -> dict:
    return {"id": str(uuid.uuid4()), "event": event, "payload": {"id": item}, "created_on": 1}


def test_the_index_is_capped_and_keeps_the_envelope(redis_client: redis.Redis) -> None:
    intake = Intake(redis_client, 3600, 3600, history_cap=5)
    raw = b'{"id": "raw-1", "event": "asset.created", "payload": {"id": "a1"}, "extra": 1}'
    assert intake.accept(Delivery(json.loads(raw), raw), "queued") == "queued"
    assert store.read_trace(redis_client, "raw-1")["envelope"]["extra"] == 1  # the bytes as received
    ids = [_envelope()["id"] for _ in range(6)]
    for event_id in ids:
        intake.accept({**_envelope(), "id": event_id}, "ignored")
    assert intake.accept({**_envelope(), "id": ids[-1]}, "ignored") == "duplicate"
    members = [m.decode() for m in redis_client.zrange(history.INDEX, 0, -1)]
    assert members == ids[1:]  # the cap: the oldest fell out, its trace with it
    assert store.read_trace(redis_client, "raw-1") is None and store.read_trace(redis_client, ids[1]) is not None
    counts = history.totals(history.per_minute(redis_client, 2))
    assert counts == {"ignored": 6, "queued": 1, "duplicate": 1}


def test_entries_older_than_the_traces_leave_the_index(redis_client: redis.Redis) -> None:
    old = Intake(redis_client, 3600, trace_ttl=60)
    first = _envelope()
    old.accept(first, "ignored")
    redis_client.zadd(history.INDEX, {first["id"]: time.time() - 120})
    old.accept(_envelope(), "ignored")
    assert first["id"].encode() not in redis_client.zrange(history.INDEX, 0, -1)


def test_recent_rows_filters_and_pages(redis_client: redis.Redis) -> None:
    intake = Intake(redis_client, 3600, 3600)
    traces = TraceWriter(redis_client, 3600, ["s3cret"])
    done, letter, asset = _envelope(item="i1"), _envelope(item="i2"), _envelope("asset.created", "a1")
    for envelope in (done, letter, asset):
        intake.accept(envelope, "queued")
        time.sleep(0.002)
    traces.write(done["id"], "run", {"outcome": "done: 1 call(s) sent", "elapsed_ms": 12.5, "attempt": 1,
                                     "evaluation": {"fired": ["tag-it"]}})
    traces.write(letter["id"], "run", {"outcome": "retrying in 1.0s", "attempt": 1})
    traces.write(letter["id"], "run", {"outcome": "dead-lettered: request refused s3cret", "attempt": 2})

    rows, examined = history.recent(redis_client)
    assert [r.id for r in rows] == [asset["id"], letter["id"], done["id"]] and examined == 3
    assert (rows[2].kind, rows[2].item, rows[2].ms, rows[2].rules) == ("done", "i1", 12.5, ["tag-it"])
    assert rows[0].kind == "queued" and rows[1].outcome == "dead-lettered: request refused [Filtered]"
    assert [r.id for r in history.recent(redis_client, outcome="dead-lettered")[0]] == [letter["id"]]
    assert [r.id for r in history.recent(redis_client, event="content_item.*")[0]] == [letter["id"], done["id"]]
    assert [r.id for r in history.recent(redis_client, rule="tag-it")[0]] == [done["id"]]
    page, _ = history.recent(redis_client, limit=2)
    older, _ = history.recent(redis_client, limit=2, before=page[-1].at)
    assert [r.id for r in older] == [done["id"]]
    counts = history.totals(history.per_minute(redis_client, 2))
    assert counts == {"queued": 3, "done": 1, "dead-lettered": 1}  # a retry is not counted, its end is
    # The list's counts: each event once, by its outcome now (not "queued 3" beside "done 1").
    assert history.outcome_counts(redis_client, time.time() - 60) == ({"queued": 1, "done": 1, "dead-lettered": 1}, 3)
    assert history.outcome_counts(redis_client, time.time() - 60, cap=2)[1] == 2
    assert history.outcome_counts(redis_client, time.time() + 60) == ({}, 0)
