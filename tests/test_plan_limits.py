"""The formation on Heroku's smallest Redis (25 MB, 20 connections, noeviction), real processes.

A redis-server started here with those limits; the sandbox, the Procfile's web (gunicorn, its
flags) and worker, as benchmarks/_plan.py runs them for the footprint benchmark. The replay is
the real corpus with fresh ids and a recent created_on. To stay within a few minutes the
history's budget is shrunk instead of the replay grown: HISTORY_MAX_BYTES=2mb (of 25 MB) with
6,000 deliveries, about three times what that budget holds.
"""
from __future__ import annotations

import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest
import redis
import requests

from benchmarks import _corpus, _plan
from prepr_automation import budget, history

pytestmark = pytest.mark.skipif(not _corpus.FIXTURE.exists(), reason=f"no corpus at {_corpus.FIXTURE}")
MINI = _plan.PLANS["mini"]
REPLAY, HISTORY = 6000, 2 * 1024 ** 2


@pytest.fixture
def formation() -> Iterator[_plan.Formation]:
    work = Path(tempfile.mkdtemp(prefix="plan-limits-"))
    stack = _plan.Formation(work, MINI, {"HISTORY_MAX_BYTES": str(HISTORY), "COALESCE_SECONDS": "0.5"})
    try:
        yield stack
    finally:
        stack.close()
        shutil.rmtree(work, ignore_errors=True)


def test_a_replay_larger_than_the_budget_on_the_smallest_plan(formation: _plan.Formation) -> None:
    events = _plan.corpus(REPLAY)
    tagged = formation.seed(events)
    sampler = _plan.Sampler(formation.client)
    try:
        statuses = formation.post(events, retries=0)
        assert formation.settle(240), "events still queued after 4 minutes"
    finally:
        sampler.stop()
    formation.check_alive()  # no process exited
    assert set(statuses) <= {200, 202} and sum(statuses.values()) == REPLAY, statuses  # every one 2xx, first try
    assert formation.tagged() == tagged  # every event processed: each item the rule tags has its tag
    stats = formation.client.info("stats")
    assert stats["rejected_connections"] == 0 and sampler.peak_clients <= MINI.maxclients, sampler.per_name
    assert not list(formation.log_lines("max number of clients", "OutOfMemoryError", "Unrecoverable error"))
    listed = formation.client.zcard(history.INDEX)
    assert 0 < listed < REPLAY  # the oldest history went, the newest is there
    assert int(formation.client.get(budget.TOTAL) or 0) <= HISTORY
    assert len(list(formation.client.scan_iter("pa:seen:*", count=1000))) == REPLAY  # dedupe marks all kept
    assert sampler.peak_memory < MINI.maxmemory


class Filler:
    """Keeps Redis at its maxmemory (as a backlog would) while running, with no history left that
    could be trimmed to make room (the web and the worker trim it first when Redis refuses them)."""

    def __init__(self, formation: _plan.Formation) -> None:
        self.client, self.n, self.stopped = formation.client, 0, threading.Event()
        trimmer = budget.Budget(formation.client, None, 3600, history.CAP)
        while trimmer.make_room():
            pass
        self.top_up()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def top_up(self) -> None:
        for size in (50_000, 1000, 50):  # the last big one's query buffer, freed, leaves room for small ones
            while True:
                try:
                    self.client.set(f"filler:{self.n}", b"x" * size)
                    self.n += 1
                except redis.OutOfMemoryError:
                    break

    def run(self) -> None:
        while not self.stopped.wait(0.02):
            self.top_up()

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(5)
        self.client.delete(*[f"filler:{i}" for i in range(self.n)])


def test_a_full_redis_is_answered_503_and_waited_out(formation: _plan.Formation) -> None:
    """Redis fills up (a backlog, another app) while the worker is in the middle of its events:
    deliveries get 503 + Retry-After and /health says so; nobody exits; once memory is freed
    the worker finishes what it held and new deliveries are taken again."""
    events = [e for e in _plan.corpus(400, copy=1) if e["event"] in _plan.TAGGED][:40]
    tagged = formation.seed(events)
    formation.sandbox.admin("PUT", "remote", {"latency_ms": 1500, "rate_limit": "1000/second"})
    assert formation.post(events[:20], retries=0).keys() <= {200, 202}
    filler = Filler(formation)
    statuses = formation.post(events[20:], retries=0)
    assert set(statuses) <= {202, 503} and statuses.get(503, 0) >= 15, statuses  # never a 500; Prepr retries a 503
    health = requests.get(f"{formation.web_url}/health", timeout=5)
    assert health.status_code == 503 and health.headers["Retry-After"]
    assert health.json()["message"].startswith("Redis full:") and health.json()["redis"]["full"] is True
    time.sleep(8)  # the worker's runs end against a full Redis
    formation.check_alive()  # neither web nor worker exited
    filler.stop()
    formation.sandbox.admin("PUT", "remote", {"latency_ms": 0, "rate_limit": "1000/second"})
    assert formation.post(events[20:], retries=0).keys() <= {200, 202}
    assert formation.settle(120)
    formation.check_alive()
    assert formation.tagged() == tagged
    assert requests.get(f"{formation.web_url}/health", timeout=5).status_code == 200
    assert list(formation.log_lines("Redis is full")), "the worker said why it waited"
