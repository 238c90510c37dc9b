"""The door's one write path into the store: dedupe, record and enqueue in ONE atomic Redis call.

The script and the message are the queue's contract (tasks.messages): an id is seen exactly when
its message is on the broker, so two identical deliveries at the same instant enqueue once, and
a broker error leaves nothing marked (Prepr's retry is processed). The web process needs neither
Celery nor the task code.
"""
from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any, Literal

import redis

from prepr_automation import history, store
from prepr_automation.store import PREFIX
from prepr_automation.budget import Budget
from prepr_automation.recorder import Recorder
from tasks.messages import EVENTS_QUEUE, Enqueue, task_message

UNDATED_TTL = 90 * 24 * 3600  # a delivery without created_on: how long its first arrival is remembered
Outcome = Literal["queued", "ignored", "stale", "duplicate"]
TOKEN = 8  # hex digits of the task id the dedupe mark keeps: enough to tell this call's tries from
# another delivery of the same id, and the mark (kept 4 days, never trimmed) stays small


class BrokerUnavailable(Exception):
    """The broker could not take the message in time; the caller answers 503."""


class Delivery(dict):
    """A parsed envelope that still knows the exact bytes it was parsed from.

    When `raw` is set the queue message embeds those bytes instead of serialising the dict a
    second time; the worker parses them with the same JSON parser, so it gets the same envelope.
    """

    __slots__ = ("raw",)

    def __init__(self, parsed: dict[str, Any], raw: bytes | None) -> None:
        super().__init__(parsed)
        self.raw = raw


def embeddable(body: bytes) -> bool:
    """Bytes that can go into a message as they are: what json.loads read as strict UTF-8.

    (json.loads also takes UTF-16/32 and a UTF-8 BOM; kombu decodes strict UTF-8 only, so those
    are serialised again instead.)
    """
    if json.detect_encoding(body) != "utf-8":
        return False
    if not body.isascii():
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            return False
    return True


@dataclass
class Intake:
    """Accept one delivery: queued (a rule listens), ignored (none does) or stale (too old to
    tell from a replay), each recorded; a duplicate only counted."""

    client: redis.Redis
    dedupe_ttl: int
    trace_ttl: int
    attempts: int = 3
    backoff: float = 0.15
    queue: str = EVENTS_QUEUE  # the list the message goes on (a benchmark stages elsewhere)
    history_cap: int = history.CAP
    history_max_bytes: int | None = None  # HISTORY_MAX_BYTES (None: half of maxmemory, else 256 MB)
    background: bool | None = None  # the history after the answer, in a greenlet (None: under gevent)

    def __post_init__(self) -> None:
        self._enqueue = Enqueue(self.client)
        self.budget = Budget(self.client, self.history_max_bytes, self.trace_ttl, self.history_cap)
        self.recorder = Recorder(self.client, self.budget, self.trace_ttl, self.background)

    def accept(self, envelope: dict[str, Any], status: Outcome) -> Outcome:
        """Mark, push (when `status` is queued) and record; retried on a broker error. Each try
        carries the same task id, so a try that landed but whose answer was lost is recognised."""
        event_id = str(envelope["id"])
        task_id = str(uuid.uuid4())
        message = b""
        raw = getattr(envelope, "raw", None)  # also kept with the trace, for replay and explain
        if status == "queued":
            message = task_message(envelope, EVENTS_QUEUE, task_id, raw)
        now = time.time()
        payload = envelope.get("payload")
        item = payload.get("id") if isinstance(payload, dict) else None
        record = json.dumps({"event": envelope.get("event"), "received_at": now, "status": status,
                             "item": None if item is None else str(item), "task_id": task_id if message else None}, separators=(",", ":"))
        for attempt in range(self.attempts):
            try:
                landed = self._enqueue(event_id, task_id[-TOKEN:], message, record, queue=self.queue,
                                       seen_ttl=self.dedupe_ttl,
                                       trace_ttl=self.trace_ttl)
                break
            except redis.OutOfMemoryError:  # Redis full: make room from the history, Prepr retries
                self.budget.make_room()
                raise BrokerUnavailable("OutOfMemoryError") from None
            except redis.RedisError as exc:
                if attempt + 1 == self.attempts:
                    raise BrokerUnavailable(type(exc).__name__) from None
                time.sleep(self.backoff * (attempt + 1))
        if landed == "duplicate":
            self.recorder.add(event_id, now, "duplicate")
            return "duplicate"
        self.recorder.add(event_id, now, status, raw if raw is not None else json.dumps(envelope), len(record))
        return status  # "new", or "again": this call's earlier try landed and its answer was lost

    def first_arrival(self, event_id: str, now: float) -> float:
        """When a delivery without a usable created_on was first received (this one, if never):
        kept UNDATED_TTL, long after its seen-mark, so a late replay is recognised as stale."""
        key = f"{PREFIX}undated:{event_id}"
        try:
            with self.client.pipeline(transaction=False) as pipe:
                pipe.set(key, repr(now), nx=True, ex=UNDATED_TTL)
                pipe.get(key)
                _, first = pipe.execute()
        except redis.RedisError as exc:
            raise BrokerUnavailable(type(exc).__name__) from None
        try:
            return float(first)
        except (TypeError, ValueError):
            return now

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
