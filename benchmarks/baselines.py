"""Bare receivers the project's web is measured against, served by gunicorn like the project.

Each is the least a receiver of that kind must do, so the gap between them and the project is
what the project's own checks cost:
- bare: read the raw body, verify the HMAC, answer 202 (no durability at all);
- lpush: bare + one Redis LPUSH of the raw body (the minimum durable enqueue);
- celery: bare + parse the JSON + Celery `send_task` to Redis (the ceiling for any receiver
  that enqueues through Celery).
The HMAC code is written out here rather than imported, so optimising the project never moves
the baselines. Configuration comes from BENCH_SECRET and BENCH_BROKER.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
from typing import Callable, Optional

from flask import Flask, Response, request

PATH = "/webhooks/prepr"
LIST_KEY = "bench:lpush"
CELERY_QUEUE = "celery"
_QUEUED = '{"status":"queued"}'
_DENIED = '{"error":"missing or invalid Prepr-Signature"}'


def _verifier() -> Callable[[bytes, Optional[str]], bool]:
    key = os.environ["BENCH_SECRET"].encode()

    def verified(body: bytes, header: str | None) -> bool:
        expected = hmac.new(key, body, hashlib.sha256).hexdigest()
        return header is not None and hmac.compare_digest(expected, header)
    return verified


def _app(enqueue: Optional[Callable[[bytes], None]]) -> Flask:
    verified = _verifier()
    app = Flask("baseline")

    @app.post(PATH)
    def receive() -> Response:
        body = request.get_data()
        if not verified(body, request.headers.get("Prepr-Signature")):
            return Response(_DENIED, 401, mimetype="application/json")
        if enqueue is not None:
            enqueue(body)
        return Response(_QUEUED, 202, mimetype="application/json")

    @app.get(PATH)
    def probe() -> Response:
        return Response('{"status":"ok"}', 200, mimetype="application/json")

    return app


def bare() -> Flask:
    """(a) verify and answer."""
    return _app(None)


def lpush() -> Flask:
    """(b) verify, LPUSH the raw body over one pooled client, answer."""
    import redis

    client = redis.Redis.from_url(os.environ["BENCH_BROKER"].replace("redis+socket://", "unix://"))

    def enqueue(body: bytes) -> None:
        client.lpush(LIST_KEY, body)
    return _app(enqueue)


def celery() -> Flask:
    """(c) verify, parse, `send_task` through a stock Celery app on the same broker."""
    from celery import Celery

    app = Celery("baseline", broker=os.environ["BENCH_BROKER"], set_as_current=False)
    app.conf.update(task_serializer="json", accept_content=["json"], task_ignore_result=True,
                    result_backend=None, task_default_queue=CELERY_QUEUE,
                    broker_transport_options={"socket_timeout": 5, "socket_connect_timeout": 5,
                                              "health_check_interval": 30})

    def enqueue(body: bytes) -> None:
        app.send_task("tasks.process_event", args=[json.loads(body)])
    return _app(enqueue)
