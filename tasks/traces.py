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

from prepr_automation import compact, history, store
from prepr_automation.budget import Budget
from prepr_automation.observability import scrub_text


class TraceWriter:
    """The worker's trace writes: packed (prepr_automation.compact), counted against the history's
    budget and followed by its trim, in the pipeline the caller already sends."""

    def __init__(self, client: redis.Redis, ttl: int, secrets: list[str], history_max_bytes: int | None = None) -> None:
        self.client = client
        self.ttl = ttl
        self.secrets = secrets
        self.budget = Budget(client, history_max_bytes, ttl, history.CAP)
        self._field = history.FieldWriter(client)

    def write(self, event_id: str, field: str, data: Any, pipe: Pipeline | None = None) -> None:
        """Set one field of the event's trace; into `pipe` when given (the caller executes it)."""
        value = compact.pack(scrub_text(encode(data), self.secrets))
        target = pipe if pipe is not None else self.client.pipeline(transaction=False)
        outlined, final = "", ""
        if field == "run":  # the console's event list and counts, in the same call
            outlined, final = history.outline(data)
            outlined = scrub_text(outlined, self.secrets)
        self._field(target, event_id, field, value, self.ttl, outlined, final)
        self.budget.trim(target)
        if pipe is None:
            target.execute()

    def read(self, event_id: str) -> dict[str, Any] | None:
        return store.read_trace(self.client, event_id)


def encode(data: Any) -> str:
    """JSON for the store; data too deeply nested to encode becomes a short note, never an error."""
    try:
        return json.dumps(data, default=str, separators=(",", ":"))
    except (RecursionError, ValueError) as exc:
        return json.dumps({"unencodable": f"{type(exc).__name__}: {str(exc)[:200]}"})
