"""Writing the worker's part of an event's trace (the receiver wrote `received`).

A trace is one Redis hash per event, kept TRACE_TTL (7 days): `received`, `duplicates`, then
`run` (the latest attempt: rules and their condition trees, fetched fields, planned and sent
calls with status and timing, outcome), `attempts`, and `bulk:<n>` for bulk jobs.
"""
from __future__ import annotations

import json
from typing import Any

import redis

from prepr_automation import store
from prepr_automation.observability import scrub


class TraceWriter:
    def __init__(self, client: redis.Redis, ttl: int, secrets: list[str]) -> None:
        self.client = client
        self.ttl = ttl
        self.secrets = secrets

    def write(self, event_id: str, field: str, data: Any) -> None:
        key = store.trace_key(event_id)
        with self.client.pipeline() as pipe:
            pipe.hset(key, field, json.dumps(scrub(data, self.secrets), default=str))
            if field == "run":
                pipe.hincrby(key, "attempts", 1)
            pipe.expire(key, self.ttl)
            pipe.execute()

    def read(self, event_id: str) -> dict[str, Any] | None:
        raw = self.client.hgetall(store.trace_key(event_id))
        return store.decode_trace(raw) if raw else None
