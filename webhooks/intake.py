"""Dedupe, record and enqueue a delivery in ONE atomic Redis round trip.

A Lua script marks the id seen, pushes the Celery message onto the queue list and writes the
receive record together, so an id is seen exactly when its message is on the broker: two
identical deliveries at the same instant enqueue once, and a broker error leaves nothing marked
(Prepr's retry is processed). The message is the Celery protocol-2 envelope as kombu's Redis
transport stores it; the web process therefore needs neither Celery nor the task code.
"""
from __future__ import annotations

import base64
import json
import os
import socket
import time
import uuid
from dataclasses import dataclass
from typing import Any, Literal

import redis

from prepr_automation import store

TASK_NAME = "tasks.process_event"
QUEUE = "celery"

# KEYS: seen, trace, queue   ARGV: event_id, dedupe_ttl, trace_ttl, message|"", record
_SCRIPT = """
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[2]) then
  if ARGV[4] ~= '' then redis.call('LPUSH', KEYS[3], ARGV[4]) end
  redis.call('HSET', KEYS[2], 'received', ARGV[5])
  redis.call('EXPIRE', KEYS[2], ARGV[3])
  return 1
end
redis.call('HINCRBY', KEYS[2], 'duplicates', 1)
return 0
"""

Outcome = Literal["queued", "ignored", "duplicate"]


class BrokerUnavailable(Exception):
    """The broker could not take the message in time; the caller answers 503."""


def celery_message(task_id: str, args: list[Any], queue: str = QUEUE) -> str:
    """Serialise one task message exactly as `send_task` would put it on kombu's Redis transport."""
    body = json.dumps([args, {}, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}],
                      separators=(",", ":"))
    return json.dumps({
        "body": base64.b64encode(body.encode()).decode(),
        "content-encoding": "utf-8",
        "content-type": "application/json",
        "headers": {
            "lang": "py", "task": TASK_NAME, "id": task_id, "shadow": None, "eta": None,
            "expires": None, "group": None, "group_index": None, "retries": 0,
            "timelimit": [None, None], "root_id": task_id, "parent_id": None,
            "argsrepr": "[envelope]", "kwargsrepr": "{}", "origin": _ORIGIN,
            "ignore_result": True, "replaced_task_nesting": 0, "stamped_headers": None, "stamps": {},
        },
        "properties": {
            "correlation_id": task_id, "reply_to": "", "delivery_mode": 2,
            "delivery_info": {"exchange": "", "routing_key": queue}, "priority": 0,
            "body_encoding": "base64", "delivery_tag": str(uuid.uuid4()),
        },
    }, separators=(",", ":"))


_ORIGIN = f"{os.getpid()}@{socket.gethostname()}"


@dataclass
class Intake:
    """The receiver's one write path into the store."""

    client: redis.Redis
    dedupe_ttl: int
    trace_ttl: int
    attempts: int = 3
    backoff: float = 0.15

    def __post_init__(self) -> None:
        self._script = self.client.register_script(_SCRIPT)

    def accept(self, envelope: dict[str, Any], enqueue: bool) -> Outcome:
        event_id = str(envelope["id"])
        status: Outcome = "queued" if enqueue else "ignored"
        message = celery_message(str(uuid.uuid4()), [envelope]) if enqueue else ""
        record = json.dumps({"event": envelope.get("event"), "received_at": time.time(), "status": status})
        keys = [store.seen_key(event_id), store.trace_key(event_id), QUEUE]
        args = [event_id, self.dedupe_ttl, self.trace_ttl, message, record]
        for attempt in range(self.attempts):
            try:
                return status if self._script(keys=keys, args=args) == 1 else "duplicate"
            except redis.RedisError as exc:
                if attempt + 1 == self.attempts:
                    raise BrokerUnavailable(type(exc).__name__) from None
                time.sleep(self.backoff * (attempt + 1))
        raise AssertionError("unreachable")

    def healthy(self) -> bool:
        try:
            return bool(self.client.ping())
        except redis.RedisError:
            return False

    def trace(self, event_id: str) -> dict[str, Any] | None:
        try:
            raw = self.client.hgetall(store.trace_key(event_id))
        except redis.RedisError as exc:
            raise BrokerUnavailable(type(exc).__name__) from None
        return store.decode_trace(raw) if raw else None
