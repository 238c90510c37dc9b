"""store.Batch against the real Redis: one round trip, raw replies, errors that keep the connection in step."""
from __future__ import annotations

import time

import pytest
import redis

from prepr_automation import store


def test_a_batch_runs_its_commands_in_one_round_trip_with_raw_replies(redis_client, monkeypatch):
    sent: list[object] = []
    original = redis.connection.Connection.send_packed_command

    def counting(self, command, check_health=True):  # type: ignore[no-untyped-def]
        sent.append(command)
        return original(self, command, check_health)

    redis_client.ping()  # the connection's handshake is not the batch's
    monkeypatch.setattr(redis.connection.Connection, "send_packed_command", counting)
    with store.Batch(redis_client) as batch:
        replies = (batch.set("k", "v", ex=100).hset("h", "a", 1, mapping={"b": "2"}).expire("h", 50)
                   .zadd("z", {"m1": 1.5, "m2": 2}).eval("return {KEYS[1], ARGV[1]}", 1, "x", "y").execute())
    assert len(sent) == 1
    assert replies == [b"OK", 2, 1, 2, [b"x", b"y"]]
    assert redis_client.get("k") == b"v" and 0 < redis_client.ttl("k") <= 100
    assert redis_client.hgetall("h") == {b"a": b"1", b"b": b"2"} and 0 < redis_client.ttl("h") <= 50
    assert redis_client.zrange("z", 0, -1, withscores=True) == [(b"m1", 1.5), (b"m2", 2.0)]
    assert store.Batch(redis_client).execute() == []  # nothing queued: no round trip


def test_an_error_reply_is_raised_after_every_reply_was_read(redis_client):
    redis_client.set("text", "not a hash")
    batch = store.Batch(redis_client).set("first", "1").hset("text", "f", "v").set("after", "2")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        batch.execute()
    assert redis_client.get("first") == b"1" and redis_client.get("after") == b"2"  # the others ran
    # the connection went back to the pool in step: the next batch reads its own replies
    assert store.Batch(redis_client).set("next", "3").execute() == [b"OK"]
    assert store.Batch(redis_client).eval("return 7", 0).execute() == [7]


def test_a_connection_that_timed_out_is_dropped_not_reused(redis_url):
    client = redis.Redis.from_url(redis_url, socket_timeout=0.2, client_name="batch-under-test")
    busy = "local t = redis.call('TIME') repeat local n = redis.call('TIME') until (n[1]-t[1])*1e6 + n[2]-t[2] > 500000 return 'late'"
    with pytest.raises(redis.TimeoutError):
        store.Batch(client).eval(busy, 0).execute()
    time.sleep(0.5)
    observer = redis.Redis.from_url(redis_url)
    # the timed-out connection was dropped, not handed back to the pool half-read
    assert not [c for c in observer.client_list() if c.get("name") == "batch-under-test"]  # the script ends; its 'late' reply must not be read as the next batch's answer
    assert store.Batch(client).set("again", "1").eval("return 'mine'", 0).execute() == [b"OK", b"mine"]
