"""Writing the worker's part of an event's trace (the receiver wrote `received`).

A trace is one Redis hash per event, kept TRACE_TTL (7 days): `received`, `duplicates`, then
`run` (the latest attempt, numbered: rules and their condition trees, fetched fields, planned
and sent calls with status and timing, outcome), and `bulk:<kind>:<rule>` for bulk jobs.
"""
from __future__ import annotations

import json
from typing import Any

import redis
from redis.client import Pipeline

from prepr_automation import history, store
from prepr_automation.observability import scrub_text


class TraceWriter:
    def __init__(self, client: redis.Redis, ttl: int, secrets: list[str]) -> None:
        self.client = client
        self.ttl = ttl
        self.secrets = secrets

    def write(self, event_id: str, field: str, data: Any, pipe: Pipeline | None = None) -> None:
        """Set one field of the event's trace; into `pipe` when given (the caller executes it)."""
        key = store.trace_key(event_id)
        value = scrub_text(encode(data), self.secrets)
        target = pipe if pipe is not None else self.client.pipeline(transaction=False)
        target.hset(key, field, value)
        target.expire(key, self.ttl)
        if field == "run":  # the console's event list and counts (one command in the same round trip)
            history.note_run(target, event_id, data, self.ttl, lambda text: scrub_text(text, self.secrets))
        if pipe is None:
            target.execute()

    def read(self, event_id: str) -> dict[str, Any] | None:
        return store.read_trace(self.client, event_id)


def encode(data: Any) -> str:
    """JSON for the store; data too deeply nested to encode becomes a short note, never an error."""
    try:
        return json.dumps(data, default=str)
    except (RecursionError, ValueError) as exc:
        return json.dumps({"unencodable": f"{type(exc).__name__}: {str(exc)[:200]}"})
