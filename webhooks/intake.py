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

from prepr_automation import history, store

TASK_NAME = "tasks.process_event"
QUEUE = "celery"

# KEYS: seen, trace, queue, history index, history counts
# ARGV: event_id, dedupe_ttl, trace_ttl, message|"", record, envelope, received_at, status, index cap
_SCRIPT = """
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[2]) then
  if ARGV[4] ~= '' then redis.call('LPUSH', KEYS[3], ARGV[4]) end
  redis.call('HSET', KEYS[2], 'received', ARGV[5], 'envelope', ARGV[6])
  redis.call('EXPIRE', KEYS[2], ARGV[3])
  redis.call('ZADD', KEYS[4], ARGV[7], ARGV[1])
  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', ARGV[7] - ARGV[3])
  redis.call('ZREMRANGEBYRANK', KEYS[4], 0, -1 - ARGV[9])
  redis.call('HINCRBY', KEYS[5], ARGV[8], 1)
  redis.call('EXPIRE', KEYS[5], ARGV[3])
  return 1
end
redis.call('HINCRBY', KEYS[2], 'duplicates', 1)
redis.call('HINCRBY', KEYS[5], 'duplicate', 1)
redis.call('EXPIRE', KEYS[5], ARGV[3])
return 0
"""

Outcome = Literal["queued", "ignored", "duplicate"]


class BrokerUnavailable(Exception):
    """The broker could not take the message in time; the caller answers 503."""


_EMBED = b',{},{"callbacks":null,"errbacks":null,"chain":null,"chord":null}]'


class Delivery(dict):
    """A parsed envelope that still knows the exact bytes it was parsed from.

    Passed where a plain envelope dict goes, so `Intake.accept(envelope, enqueue)` keeps its
    signature; when `raw` is set the queue message embeds those bytes instead of serialising
    the dict a second time. The worker parses them with the same JSON parser, so it gets the
    same envelope either way.
    """

    __slots__ = ("raw",)

    def __init__(self, parsed: dict[str, Any], raw: bytes | None) -> None:
        super().__init__(parsed)
        self.raw = raw


def embeddable(body: bytes) -> bool:
    """Bytes that can go into a message as they are: what json.loads read as strict UTF-8.

    (json.loads also takes UTF-16/32, a UTF-8 BOM and encoded lone surrogates; kombu decodes
    strict UTF-8 only, so those are serialised again instead.)
    """
    if json.detect_encoding(body) != "utf-8":
        return False
    if not body.isascii():
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            return False
    return True


def _template(queue: str) -> tuple[bytes, bytes, bytes, bytes, bytes]:
    """The message with its four variable parts cut out, serialised once per queue.

    The headers and properties are constant but for the task id and delivery tag; building and
    dumping them per request was a quarter of the receiver's own CPU time.
    """
    mark = "\x00"
    text = json.dumps({
        "body": mark,
        "content-encoding": "utf-8",
        "content-type": "application/json",
        "headers": {
            "lang": "py", "task": TASK_NAME, "id": mark, "shadow": None, "eta": None,
            "expires": None, "group": None, "group_index": None, "retries": 0,
            "timelimit": [None, None], "root_id": mark, "parent_id": None,
            "argsrepr": "[envelope]", "kwargsrepr": "{}", "origin": _ORIGIN,
            "ignore_result": True, "replaced_task_nesting": 0, "stamped_headers": None, "stamps": {},
        },
        "properties": {
            "correlation_id": mark, "reply_to": "", "delivery_mode": 2,
            "delivery_info": {"exchange": "", "routing_key": queue}, "priority": 0,
            "body_encoding": "base64", "delivery_tag": mark,
        },
    }, separators=(",", ":"))
    parts = tuple(part.encode() for part in text.split(json.dumps(mark)))
    assert len(parts) == 6, "the template must have exactly five holes"
    return parts  # type: ignore[return-value]


def celery_message(task_id: str, args: list[Any], queue: str = QUEUE, raw_args: bytes | None = None) -> bytes:
    """One task message exactly as `send_task` would put it on kombu's Redis transport.

    `raw_args`, when given, is the JSON of `args` already serialised (see Delivery).
    """
    if raw_args is None:
        raw_args = json.dumps(args, separators=(",", ":")).encode()
    body = base64.b64encode(b"[" + raw_args + _EMBED)
    tid = task_id.encode()
    head, after_body, after_id, after_root, after_corr, tail = _TEMPLATES.get(queue) or _template(queue)
    return b"".join((head, b'"', body, b'"', after_body, b'"', tid, b'"', after_id, b'"', tid, b'"',
                     after_root, b'"', tid, b'"', after_corr, b'"', str(uuid.uuid4()).encode(), b'"', tail))


_ORIGIN = f"{os.getpid()}@{socket.gethostname()}"
_TEMPLATES = {QUEUE: _template(QUEUE)}


@dataclass
class Intake:
    """The receiver's one write path into the store."""

    client: redis.Redis
    dedupe_ttl: int
    trace_ttl: int
    attempts: int = 3
    backoff: float = 0.15
    history_cap: int = history.CAP

    def __post_init__(self) -> None:
        self._script = self.client.register_script(_SCRIPT)

    def accept(self, envelope: dict[str, Any], enqueue: bool) -> Outcome:
        event_id = str(envelope["id"])
        status: Outcome = "queued" if enqueue else "ignored"
        message = b""
        raw = getattr(envelope, "raw", None)  # also kept with the trace, for replay and explain
        if enqueue:
            message = celery_message(str(uuid.uuid4()), [envelope], raw_args=None if raw is None else b"[" + raw + b"]")
        now = time.time()
        payload = envelope.get("payload")
        item = payload.get("id") if isinstance(payload, dict) else None
        record = json.dumps({"event": envelope.get("event"), "received_at": now, "status": status,
                             "item": None if item is None else str(item)})
        keys = [store.seen_key(event_id), store.trace_key(event_id), QUEUE, history.INDEX, history.counts_key(now)]
        args = [event_id, self.dedupe_ttl, self.trace_ttl, message, record,
                raw if raw is not None else json.dumps(envelope), now, status, self.history_cap]
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
            return store.read_trace(self.client, event_id)
        except redis.RedisError as exc:
            raise BrokerUnavailable(type(exc).__name__) from None
