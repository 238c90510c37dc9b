"""Recent events for the console: a time index, counts per outcome per minute, queue depths.

All of it lives in the one Redis and is bounded: the index keeps the traces' own 7 days, at
most CAP entries and at most the budget's bytes (prepr_automation.budget); count buckets last
the 24 hours the console charts. The receiver's recorder (prepr_automation.recorder) lists an
event after its answer, the worker's trace write (tasks.traces) adds its run in the round trip
it already makes.
"""
from __future__ import annotations

import fnmatch
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any, Iterator

import redis

from .store import PREFIX, trace_key

INDEX = f"{PREFIX}events"  # sorted set: event id scored by its receipt time
CAP = 100_000  # at most this many events are listed, whatever arrived in 7 days
QUEUES = ("celery", "bulk")
_PRIORITY_SEP = "\x06\x16"  # kombu's Redis transport: queue names of priority steps 3, 6, 9
# Not yet final: counted when the run ends, not at every attempt (a merged event's own outcome is
# written by the run that handled it).
PENDING_KINDS = ("queued", "retrying", "waiting", "interrupted", "merged")


def counts_key(ts: float) -> str:
    return f"{PREFIX}counts:{int(ts // 60)}"


_SUFFIXED = ("retrying", "merged")  # "retrying in 1.2s", "merged into run 4f2a…"


def kind(outcome: str) -> str:
    """An outcome's family: "done: 2 call(s) sent" -> done, "retrying in 1.2s" -> retrying."""
    for family in _SUFFIXED:
        if outcome.startswith(family):
            return family
    head = (outcome or "").split(":", 1)[0].strip()
    return head if re.fullmatch(r"[a-z][a-z -]*", head) else "other"


# KEYS: trace, counts, budget total, index
# ARGV: field, value, ttl, outline|'', kind|'' (not final), counts ttl, now, event id, entry overhead
# A trace trimmed away (or never received: a replay, a test) is written again and listed again,
# so that every trace the store holds is one the budget can see and trim.
_WRITE = """
local delta = 0
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('ZADD', KEYS[4], 'NX', ARGV[7], ARGV[8])
  delta = tonumber(ARGV[9])
end
delta = delta + #ARGV[2] - redis.call('HSTRLEN', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if ARGV[4] ~= '' then
  delta = delta + #ARGV[4] - redis.call('HSTRLEN', KEYS[1], 'outline')
  redis.call('HSET', KEYS[1], 'outline', ARGV[4])
end
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('INCRBY', KEYS[3], delta)
if ARGV[5] ~= '' then
  redis.call('HINCRBY', KEYS[2], ARGV[5], 1)
  redis.call('EXPIRE', KEYS[2], ARGV[6])
end
"""


def outline(run: dict[str, Any]) -> tuple[str, str]:
    """The run's outline (what the event list shows and filters on, never packed: the list
    searches its bytes) and its outcome family when final, else ''."""
    family = kind(str(run.get("outcome", "")))
    rules = (run.get("evaluation") or {}).get("fired") or []
    text = json.dumps({"outcome": run.get("outcome"), "kind": family, "ms": run.get("elapsed_ms"),
                       "rules": list(rules), "attempt": run.get("attempt")}, default=str, separators=(",", ":"))
    return text, "" if family in PENDING_KINDS else family


class FieldWriter:
    """Writes one field of a trace with the budget's accounting, and for `run` the outline and
    the count of a final outcome, in one script call added to the caller's pipeline."""

    def __init__(self, client: redis.Redis) -> None:
        self._script = client.register_script(_WRITE)

    def __call__(self, pipe: Any, event_id: str, field: str, value: bytes, ttl: int, outlined: str = "",
                 final: str = "") -> None:
        from .budget import ENTRY_OVERHEAD, TOTAL
        from .recorder import COUNTS_TTL

        now = time.time()
        self._script(keys=[trace_key(event_id), counts_key(now), TOTAL, INDEX],
                     args=[field, value, ttl, outlined, final, COUNTS_TTL, now, event_id, ENTRY_OVERHEAD], client=pipe)


@dataclass
class Row:
    id: str
    at: float
    event: str = "?"
    item: str | None = None
    outcome: str = "queued"
    kind: str = "queued"
    ms: float | None = None
    rules: list[str] = field(default_factory=list)


def _row(event_id: str, at: float, received: bytes | None, outline: bytes | None) -> Row:
    row = Row(event_id, at)
    if received:
        rec = json.loads(received)
        row.event, row.item = rec.get("event") or "?", rec.get("item")
        row.outcome = row.kind = rec.get("status") or "queued"
    if outline:
        out = json.loads(outline)
        row.outcome, row.kind, row.ms, row.rules = out.get("outcome") or "", out.get("kind") or "other", \
            out.get("ms"), out.get("rules") or []
    return row


def _matches(row: Row, outcome: str | None, event: str | None, rule: str | None) -> bool:
    return ((not outcome or row.kind == outcome) and (not event or fnmatch.fnmatchcase(row.event, event))
            and (not rule or rule in row.rules))


def _needles(outcome: str | None, event: str | None, rule: str | None) -> list[bytes]:
    """Byte strings every matching row's fields contain: most rows are dropped before parsing."""
    wanted = [outcome, rule] + ([event] if event and not any(c in event for c in "*?[") else [])
    return [json.dumps(w).encode() for w in wanted if w]


def recent(client: redis.Redis, limit: int = 50, before: float | None = None, outcome: str | None = None,
           event: str | None = None, rule: str | None = None, batch: int = 1000,
           scan_max: int = CAP) -> tuple[list[Row], int]:
    """Newest first, at most `limit` rows received before `before`; returns (rows, events examined).

    Filters read the compact `received` and `outline` fields only (not whole traces), up to
    `batch` events per round trip, and stop after `scan_max` events.
    """
    rows: list[Row] = []
    top: str = f"({before}" if before is not None else "+inf"
    needles = _needles(outcome, event, rule)
    examined, size = 0, limit  # the first round trip asks for just a page: unfiltered lists need no more
    while len(rows) < limit and examined < scan_max:
        ids = client.zrevrangebyscore(INDEX, top, "-inf", start=examined, num=size, withscores=True)
        size = batch
        if not ids:
            break
        with client.pipeline(transaction=False) as pipe:
            for member, _ in ids:
                pipe.hmget(trace_key(member.decode()), "received", "outline")
            fields = pipe.execute()
        for (member, score), (received, outline) in zip(ids, fields):
            examined += 1
            if received is None and outline is None:
                continue  # the trace expired before the index entry was trimmed
            if needles:
                both = (received or b"") + (outline or b"")
                if not all(needle in both for needle in needles):
                    continue
            row = _row(member.decode(), score, received, outline)
            if _matches(row, outcome, event, rule):
                rows.append(row)
                if len(rows) == limit:
                    break
    return rows, examined


def outcome_counts(client: redis.Redis, since: float, cap: int = 20_000, batch: int = 1000) -> tuple[dict[str, int], int]:
    """Each event received since `since` counted once, under the outcome it has now (its run's final
    outcome, else still queued, retrying or waiting; `ignored` and `stale` at receipt); newest first,
    at most `cap` events. Returns (counts, events counted). The per-minute buckets count receipts
    and run ends apart, so their sum would count a handled event twice ("queued" and "done")."""
    counts: dict[str, int] = {}
    counted = 0
    while counted < cap:
        ids = client.zrevrangebyscore(INDEX, "+inf", since, start=counted, num=min(batch, cap - counted))
        if not ids:
            break
        with client.pipeline(transaction=False) as pipe:
            for member in ids:
                pipe.hmget(trace_key(member.decode()), "received", "outline")
            for member, (received, outline) in zip(ids, pipe.execute()):
                counted += 1
                if received is not None or outline is not None:
                    row = _row(member.decode(), 0.0, received, outline)
                    counts[row.kind] = counts.get(row.kind, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: -kv[1])), counted


def per_minute(client: redis.Redis, minutes: int = 180, now: float | None = None) -> list[tuple[int, dict[str, int]]]:
    """[(minute start, {outcome family: count})] oldest first, for the last `minutes` minutes."""
    now = time.time() if now is None else now
    starts = [int(now // 60 - i) * 60 for i in range(minutes - 1, -1, -1)]
    with client.pipeline(transaction=False) as pipe:
        for start in starts:
            pipe.hgetall(counts_key(start))
        buckets = pipe.execute()
    return [(start, {k.decode(): int(v) for k, v in bucket.items()}) for start, bucket in zip(starts, buckets)]


def totals(buckets: list[tuple[int, dict[str, int]]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for _, bucket in buckets:
        for name, count in bucket.items():
            out[name] = out.get(name, 0) + count
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def _queue_names(queue: str) -> Iterator[str]:
    yield queue
    for step in (3, 6, 9):
        yield f"{queue}{_PRIORITY_SEP}{step}"


def queue_depths(client: redis.Redis) -> dict[str, int]:
    """Messages waiting per queue (all of kombu's priority lists) and delivered but not yet acked."""
    with client.pipeline(transaction=False) as pipe:
        for queue in QUEUES:
            for name in _queue_names(queue):
                pipe.llen(name)
        pipe.hlen("unacked")
        lengths = pipe.execute()
    steps = len(lengths[:-1]) // len(QUEUES)
    depths = {queue: sum(lengths[i * steps:(i + 1) * steps]) for i, queue in enumerate(QUEUES)}
    depths["unacked"] = lengths[-1]
    return depths
