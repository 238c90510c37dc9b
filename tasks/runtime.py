"""The one place that wires settings, store, Prepr client and rule set for a worker process.

Built lazily on the first task (not at import), once per process; a forked pool child builds
its own, so no socket is shared across a fork.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache

import redis

from prepr.client import PreprClient
from prepr.ratelimit import RateLimiter
from prepr_automation import store
from prepr_automation.observability import secret_values
from prepr_automation.settings import Settings, load_settings

from .deadletters import DeadLetters
from .traces import TraceWriter


@dataclass
class Runtime:
    settings: Settings
    redis: redis.Redis
    traces: TraceWriter
    dead: DeadLetters
    pid: int

    @property
    def api(self) -> PreprClient:
        return _api(self.pid)


@lru_cache(maxsize=1)
def _api(pid: int) -> PreprClient:
    rt = runtime()
    limiter = RateLimiter(rt.redis, rt.settings.rate_limit, key="prepr")
    return PreprClient(rt.settings.api_url, rt.settings.access_token or "", rt.settings.tracking_url,
                       rate_limiter=limiter)


def runtime(settings: Settings | None = None) -> Runtime:
    return _runtime(os.getpid()) if settings is None else _build(settings)


@lru_cache(maxsize=1)
def _runtime(pid: int) -> Runtime:
    return _build(load_settings())


def _build(settings: Settings) -> Runtime:
    client = store.redis_client(store.broker_url(settings))
    return Runtime(settings, client, TraceWriter(client, settings.trace_ttl, secret_values(settings)),
                   DeadLetters(client), os.getpid())
