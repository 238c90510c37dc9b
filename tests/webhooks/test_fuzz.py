"""Receiver fuzz: mutations of the real deliveries against the real app and real Redis.

In process (Flask, every answer checked) and over the wire (gunicorn with the Procfile's gevent
worker: chunked framing, short bodies, a stalled sender). The contract's codes only, never a
500; a queued message always decodes, as the worker will decode it, to the envelope sent.
The long run (>= 100,000 requests) is `make fuzz` (benchmarks/fuzz.py).
"""
from __future__ import annotations

import base64
import json
import random
import socket
import time

import redis
import requests
from hypothesis import HealthCheck, given, settings, strategies as st

from tasks.messages import EVENTS_QUEUE
from tests.conftest import Processes, read_deliveries
from tests.webhooks.deliveries import recent
from tests.webhooks.mutations import exchange, http_request, mutate
from tests.webhooks.test_processes import KEY as WIRE_KEY, start_web
from tests.webhooks.test_receiver import KEY, make_app

CONTRACT = {200, 202, 400, 401, 408, 413, 415}
DELIVERIES = [recent(raw) for raw in read_deliveries(limit=300)]
SLOW = settings(max_examples=1000, deadline=None, suppress_health_check=list(HealthCheck))


@SLOW
@given(index=st.integers(0, len(DELIVERIES) - 1), rng=st.randoms(use_true_random=False))
def test_in_process(index: int, rng: random.Random, redis_url: str) -> None:  # type: ignore[no-untyped-def]
    client = redis.Redis.from_url(redis_url)
    client.delete(EVENTS_QUEUE)
    app = make_app(redis_url, max_body_bytes=16384)
    body, signature, content_type, _ = mutate(DELIVERIES[index], rng, KEY)
    headers = {"Prepr-Signature": signature} if signature is not None else {}
    response = app.test_client().post("/webhooks/prepr", data=body, headers=headers, content_type=content_type or None)
    assert response.status_code in CONTRACT, (response.status_code, body[:300])
    assert response.is_json
    if response.status_code == 202 and response.get_json()["status"] == "queued":
        message = json.loads(client.lpop(EVENTS_QUEUE))
        (envelope,), _, _ = json.loads(base64.b64decode(message["body"]).decode("utf-8"))  # strict, as kombu
        assert envelope["id"] == response.get_json()["event_id"]
        assert json.dumps(envelope) == json.dumps(json.loads(body))


def test_over_the_wire(processes: Processes, redis_url: str) -> None:
    """Every framing, through gunicorn's own parser and the gevent worker, then a stalled sender."""
    url = start_web(processes, redis_url, MAX_BODY_BYTES="16384")
    port = int(url.rsplit(":", 1)[1])
    rng = random.Random(15)
    seen: dict[int, int] = {}
    for n in range(400):
        body, signature, content_type, framing = mutate(DELIVERIES[n % len(DELIVERIES)], rng, WIRE_KEY)
        if n % 4 == 0:
            framing = ["chunked", "bad-chunk-size", "no-terminator", "bad-trailer", "short"][n // 4 % 5]
        status = exchange(port, http_request(body, signature, content_type, framing), framing == "short")
        seen[status] = seen.get(status, 0) + 1
        assert status in CONTRACT | {0}, (status, framing, body[:200])
    assert seen.get(202, 0) > 0 and seen.get(400, 0) > 0, seen
    stalled = socket.create_connection(("127.0.0.1", port))
    stalled.sendall(http_request(b'{"id": "slow"', None, "application/json", "length")[:-5].replace(
        b"Content-Length: 13", b"Content-Length: 900"))
    started = time.monotonic()
    assert requests.get(url + "/health", timeout=5).status_code == 200  # not held up by the stalled sender
    stalled.settimeout(30)
    assert stalled.recv(64).startswith(b"HTTP/1.1 408")  # cut after the body time limit
    assert time.monotonic() - started < 20
    stalled.close()
    for opening in (b"", b"POST /webhooks/prepr HTTP/1.1\r\nHost: x\r\n"):  # idle; headers never finished
        held = socket.create_connection(("127.0.0.1", port))
        held.sendall(opening)
        held.settimeout(30)
        started = time.monotonic()
        answer = held.recv(4096)  # a timeout here (30 s) is the failure: the connection was kept
        assert not answer.startswith((b"HTTP/1.1 2", b"HTTP/1.1 5")), answer
        assert time.monotonic() - started < 10  # the request head must come within --keep-alive (5 s)
        held.close()
