"""What became of the jobs a backfill enqueued, read from their traces in the store (the worker's
own record of each event), so the progress bar follows processed jobs and the run ends with a
tally, without the worker reporting anything back."""
from __future__ import annotations

import time
from collections import Counter
from typing import Any

from prepr_automation import store

NO_CHANGE = ("no change", "no rule matched", "nothing matched", "skipped", "ignored", "dry run")
UNFINISHED = ("waiting", "retrying")  # the lock was busy, or an attempt failed and a retry is due
KINDS = ("done", "no change", "failed", "dead-lettered")


def kind(outcome: str) -> str | None:
    """The tally column of a run's outcome; None while the job is not finished."""
    if not outcome or outcome.startswith(UNFINISHED):
        return None
    if outcome.startswith("done"):
        return "done"
    if outcome.startswith("dead-lettered"):
        return "dead-lettered"
    if outcome.startswith(NO_CHANGE):
        return "no change"
    return "failed"


class Outcomes:
    """The jobs of this run still unfinished, and the tally of those that are."""

    def __init__(self, redis: Any, every: float = 0.5) -> None:
        self.redis, self.every = redis, every
        self.pending: list[str] = []
        self.retrying: set[str] = set()
        self.tally: Counter[str] = Counter()
        self._polled = 0.0

    def add(self, event_id: str) -> None:
        self.pending.append(event_id)

    @property
    def finished(self) -> int:
        return sum(self.tally.values())

    def poll(self, force: bool = False) -> int:
        """Read the pending jobs' traces (one round trip, at most every `every` s); how many finished."""
        if not self.pending or (not force and time.monotonic() - self._polled < self.every):
            return 0
        self._polled = time.monotonic()
        with self.redis.pipeline(transaction=False) as pipe:
            for event_id in self.pending:
                pipe.hgetall(store.trace_key(event_id))
            traces = pipe.execute()
        still, done = [], 0
        for event_id, raw in zip(self.pending, traces):
            run = store.decode_trace(raw).get("run") if raw else None
            outcome = str((run or {}).get("outcome", "")) if isinstance(run, dict) else ""
            column = kind(outcome)
            if column is None:
                still.append(event_id)
                (self.retrying.add if outcome.startswith(UNFINISHED[1]) else self.retrying.discard)(event_id)
                continue
            self.retrying.discard(event_id)
            self.tally[column] += 1
            done += 1
        self.pending = still
        return done

    def note(self) -> str:
        return f"{len(self.retrying)} retrying" if self.retrying else ""

    def summary(self) -> str:
        parts = [f"{self.tally[k]} {k}" for k in KINDS]
        if self.pending:
            parts.append(f"{len(self.pending)} not finished yet ({len(self.retrying)} retrying after a failure)")
        return "processed: " + ", ".join(parts)
