"""The replay's timeline: the first publication.* deliveries of the real corpus, in time order.

Gaps up to KEEP seconds are kept as they were; a longer one is cut to SHORT seconds, but
never so short that two events of one item come closer than KEEP when they were further apart
(so cutting cannot make events look coalescable that were not). Some items are retitled by an
editor between their last two events, which a right final state has to show. Deliveries of one
second keep the corpus's order, except that a `created` goes first and a `deleted` last.
"""
from __future__ import annotations

import gzip
import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

FIXTURE = Path(os.environ.get("CORPUS_PATH") or
               Path(__file__).resolve().parent.parent.parent / "shared" / "fixtures" / "prepr-webhooks-2022.jsonl.gz")
KEEP, SHORT = 5.0, 0.0
ORDER = {"publication.created": 0, "publication.deleted": 2}  # within one second: created first, deleted last


@dataclass
class Timeline:
    deliveries: list[tuple[float, dict[str, Any]]]          # (seconds from the start, envelope)
    retitles: list[tuple[float, str]] = field(default_factory=list)  # (seconds from the start, item id)
    items: list[str] = field(default_factory=list)           # every item, in order of first event
    original_span: float = 0.0

    @property
    def span(self) -> float:
        return self.deliveries[-1][0] if self.deliveries else 0.0


def first_publication_events(count: int, path: Path = FIXTURE) -> list[dict[str, Any]]:
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        events = [e for e in map(json.loads, handle) if str(e.get("event", "")).startswith("publication.")
                  and isinstance(e.get("created_on"), int) and (e.get("payload") or {}).get("id")]
    events.sort(key=lambda e: (e["created_on"], ORDER.get(e["event"], 1)))
    return events[:count]


@lru_cache(maxsize=2)
def timeline(count: int, retitle_every: int = 3) -> Timeline:
    """The replay schedule; every `retitle_every`-th item whose last two events are a second or more
    apart is retitled between them (half-way, at most a second before the last)."""
    events = first_publication_events(count)
    deliveries: list[tuple[float, dict[str, Any]]] = []
    last_seen: dict[str, tuple[int, float]] = {}             # item -> (original time, replay time)
    clock = 0.0
    for n, event in enumerate(events):
        item = event["payload"]["id"]
        if n:
            gap = event["created_on"] - events[n - 1]["created_on"]
            clock += gap if gap <= KEEP else SHORT
            if item in last_seen:
                was, at = last_seen[item]
                if event["created_on"] - was > KEEP:
                    clock = max(clock, at + KEEP)
        deliveries.append((clock, event))
        last_seen[item] = (event["created_on"], clock)
    times: dict[str, list[float]] = {}
    for at, event in deliveries:
        times.setdefault(event["payload"]["id"], []).append(at)
    spread = [item for item, at in times.items() if len(at) > 1 and at[-1] - at[-2] >= 1.0]
    retitles = sorted((times[item][-1] - min(1.0, (times[item][-1] - times[item][-2]) / 2), item)
                      for item in spread[::retitle_every])
    return Timeline(deliveries, retitles, list(times), float(events[-1]["created_on"] - events[0]["created_on"]))
