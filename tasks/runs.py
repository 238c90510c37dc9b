"""One run: the record of one attempt over one item, written to its events' traces once.

A run handles one event, or several coalesced ones (SPEC §8): it makes at most one GET and one
PUT for all of them, and each event keeps its own part (evaluation, planned calls, outcome).
`run_of` opens it and, whatever happens inside (success, retry, dead letter, a bug), writes
every event's `run` field when it closes — unless the success path already wrote it in the
pipeline that releases the item's lock (`Run.write(pipe)`).
"""
from __future__ import annotations

import logging
import time
import uuid
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Iterator

import redis
from redis.client import Pipeline

from prepr.client import CallRecord

if TYPE_CHECKING:
    from .runtime import Runtime

log = logging.getLogger("tasks.runs")


class EventPart:
    """What one event of the run decided and caused."""

    def __init__(self, envelope: dict[str, Any]) -> None:
        self.envelope = envelope
        self.id = str(envelope.get("id"))
        self.event = envelope.get("event")
        self.evaluation: dict[str, Any] | None = None
        self.planned: list[dict[str, Any]] = []
        self.outcome = ""


class Run:
    def __init__(self, attempt: int, replay_of: str | None, redelivered: bool, again: bool = False) -> None:
        self.id = uuid.uuid4().hex[:12]
        self.started = time.time()
        self.attempt, self.replay_of, self.redelivered, self.again = attempt, replay_of, redelivered, again
        self.parts: list[EventPart] = []
        self.fetched: dict[str, Any] | None = None
        self.calls: list[dict[str, Any]] = []
        self.current_rules: list[str] = []
        self.error: dict[str, Any] | None = None
        self.outcome = ""
        self.elapsed_ms = 0.0
        self.written = False
        self.field = "run"  # the trace field it writes (a bulk job writes `bulk:<kind>:<rule>`)
        self.details: dict[str, Any] = {}  # more for the trace (a bulk job: kind, matched, backup id)

    def add(self, envelope: dict[str, Any]) -> EventPart:
        part = EventPart(envelope)
        self.parts.append(part)
        return part

    def on_call(self, record: CallRecord) -> None:
        self.calls.append({"method": record.method, "path": record.path, "status": record.status,
                           "ms": round(record.elapsed_ms, 1), **({"error": record.error} if record.error else {})})

    @property
    def last_request(self) -> dict[str, Any] | None:
        return {k: self.calls[-1][k] for k in ("method", "path")} if self.calls else None

    def finish(self, outcome: str) -> None:
        """The run's outcome; events that have none of their own take it."""
        self.outcome = outcome
        self.elapsed_ms = round((time.time() - self.started) * 1000, 1)
        for part in self.parts:
            part.outcome = part.outcome or outcome

    def trace(self, part: EventPart) -> dict[str, Any]:
        record = {"run_id": self.id, "started": round(self.started, 6), "attempt": self.attempt,
                  "replay_of": self.replay_of,
                  "redelivered": self.redelivered, "event": part.event, "fetched": self.fetched,
                  "evaluation": part.evaluation, "calls": self.calls, "planned": part.planned,
                  "error": self.error, "outcome": part.outcome or self.outcome, "elapsed_ms": self.elapsed_ms}
        if len(self.parts) > 1:
            record["merged"] = [p.id for p in self.parts]
        return {**record, **self.details}

    def write(self, rt: Runtime, pipe: Pipeline | None = None) -> None:
        """Every event's trace, into `pipe` when given (the caller executes it)."""
        target = pipe if pipe is not None else rt.redis.pipeline(transaction=False)
        for part in self.parts:
            rt.traces.write(part.id, self.field, self.trace(part), target)
        if pipe is None:
            target.execute()
        self.written = True


@contextmanager
def run_of(rt: Runtime, attempt: int, replay_of: str | None, redelivered: bool, again: bool = False) -> Iterator[Run]:
    """Open a run; its calls are recorded, and its traces written once when it closes."""
    run = Run(attempt, replay_of, redelivered, again)
    rt.api.add_listener(run.on_call)
    try:
        yield run
    finally:
        rt.api.remove_listener(run.on_call)
        if not run.written:
            if not run.outcome:
                run.finish("interrupted")
            try:
                run.write(rt)
            except redis.RedisError:  # the store is down: the message itself is kept (see tasks.policy)
                log.warning("trace of run %s not written: the store is unreachable", run.id)
