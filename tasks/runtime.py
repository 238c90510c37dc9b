"""The one place that wires settings, store, Prepr client and rule set for a worker process.

Built lazily on the first task (not at import), once per process; a forked pool child builds
its own, so no socket is shared across a fork. Thread-safe for a threads pool: one build per
process (under a lock), and every part is shared by the pool's threads (redis-py's pool, the
Prepr client whose call listeners are per thread, the live rule set).
"""
from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import redis

from prepr.errors import PreprNotFound

from automation import RuleSet
from automation.live import LiveRuleSet
from prepr.client import PreprClient
from prepr.ratelimit import RateLimiter
from prepr_automation import store
from prepr_automation.connect import prepr_client
from prepr_automation.observability import secret_values
from prepr_automation.settings import Settings, load_settings

from .deadletters import DeadLetters
from .traces import TraceWriter


log = logging.getLogger("tasks.runtime")
CHANNELS_TTL = 300.0
_build_lock = threading.Lock()


class RulesUnavailable(Exception):
    """No valid rule set could be loaded; the event waits (retried) instead of being dropped."""


@dataclass
class Runtime:
    settings: Settings
    redis: redis.Redis
    traces: TraceWriter
    dead: DeadLetters
    pid: int
    live_rules: LiveRuleSet
    _channels: list[dict[str, Any]] = field(default_factory=list)
    _channels_at: float = 0.0

    @property
    def api(self) -> PreprClient:
        return _api(self.pid)

    @property
    def rules(self) -> RuleSet:
        """The rule set in force; followed as files change (see automation.live)."""
        rules = self.live_rules.current()
        if rules is None:
            raise RulesUnavailable(self.live_rules.status.get("first_error", "no rule set"))
        return rules

    def channels(self) -> list[dict[str, Any]]:
        """Prepr's channel list, shared by every event of this process for a few minutes (empty
        where the environment has none: channels are legacy in today's API)."""
        channels, at = self._channels, self._channels_at
        if not channels or time.monotonic() - at > CHANNELS_TTL:
            try:
                channels = list(self.api.list_channels())
            except PreprNotFound:
                channels = []
            self._channels, self._channels_at = channels, time.monotonic()  # one assignment each: atomic
        return channels


def _api(pid: int) -> PreprClient:
    with _build_lock:
        return _api_of(pid)


@lru_cache(maxsize=1)
def _api_of(pid: int) -> PreprClient:
    rt = _runtime_of(pid)
    return prepr_client(rt.settings, rt.redis, RateLimiter(rt.redis, rt.settings.rate_limit, key="prepr"))


def runtime(settings: Settings | None = None) -> Runtime:
    if settings is not None:
        return _build(settings)
    with _build_lock:
        return _runtime_of(os.getpid())


@lru_cache(maxsize=1)
def _runtime_of(pid: int) -> Runtime:
    return _build(load_settings())


# Celery's own connections in a worker process, at most (tasks.celery_app bounds each): the
# consumer's channel (BRPOP and the remote-control subscription, plus its acknowledgements),
# the producer pool's one connection (retries, scheduled runs) and the task-event dispatcher; and
# the takeover sweep's one (tasks.takeover: heartbeats and requeues on the consumer's channel).
CELERY_CHANNELS, PER_CHANNEL, TAKEOVER = 4, 2, 1
CELERY_CONNECTIONS = CELERY_CHANNELS * PER_CHANNEL + TAKEOVER


def store_share(settings: Settings) -> int:
    """The store pool's part of the worker's allowance: what Celery's connections leave (>= 2)."""
    return max(2, store.connection_limit(settings, "worker") - CELERY_CONNECTIONS)


def worker_store(settings: Settings) -> redis.Redis:
    return store.client_for(settings, role="worker", max_connections=store_share(settings))


def _build(settings: Settings) -> Runtime:
    from automation import budget

    budget.configure(max_bytes=settings.max_rendered_bytes)  # every template the worker renders
    client = worker_store(settings)
    return Runtime(settings, client, TraceWriter(client, settings.trace_ttl, secret_values(settings),
                                                 settings.history_max_bytes),
                   DeadLetters(client, secret_values(settings)), os.getpid(), LiveRuleSet(settings.rules_path))
