"""The one place that wires settings, store, Prepr client and rule set for a worker process.

Built lazily on the first task (not at import), once per process; a forked pool child builds
its own, so no socket is shared across a fork.
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import redis

from automation import RuleSet, RuleSetError, load_rules
from prepr.client import PreprClient
from prepr.ratelimit import RateLimiter
from prepr_automation import store
from prepr_automation.observability import secret_values
from prepr_automation.settings import Settings, load_settings

from .deadletters import DeadLetters
from .traces import TraceWriter


log = logging.getLogger("tasks.runtime")
RELOAD_EVERY = 5.0  # seconds between checks of the rule files' modification times
CHANNELS_TTL = 300.0


class RulesUnavailable(Exception):
    """No valid rule set could be loaded; the event waits (retried) instead of being dropped."""


def _fingerprint(path: str) -> tuple:
    root = Path(path)
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.suffix in (".yaml", ".yml"))
    return tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in files)


@dataclass
class Runtime:
    settings: Settings
    redis: redis.Redis
    traces: TraceWriter
    dead: DeadLetters
    pid: int
    _rules: RuleSet | None = None
    _rules_print: tuple = ()
    _checked: float = 0.0
    _channels: list[dict[str, Any]] = field(default_factory=list)
    _channels_at: float = 0.0

    @property
    def api(self) -> PreprClient:
        return _api(self.pid)

    @property
    def rules(self) -> RuleSet:
        """The current rule set, reloaded when files change; a broken edit keeps the last good set."""
        now = time.monotonic()
        if self._rules is not None and now - self._checked < RELOAD_EVERY:
            return self._rules
        self._checked = now
        try:
            fingerprint = _fingerprint(self.settings.rules_path)
            if self._rules is None or fingerprint != self._rules_print:
                self._rules, self._rules_print = load_rules(self.settings.rules_path), fingerprint
                log.info("rule set loaded: %s", self._rules.summary())
        except (RuleSetError, OSError) as exc:
            errors = getattr(exc, "errors", [exc])
            log.error("rule set not loaded (%d error(s)); first: %s", len(errors), errors[0])
            if self._rules is None:
                raise RulesUnavailable(str(errors[0])) from None
        return self._rules

    def channels(self) -> list[dict[str, Any]]:
        """Prepr's channel list, shared by every event of this process for a few minutes."""
        if not self._channels or time.monotonic() - self._channels_at > CHANNELS_TTL:
            self._channels, self._channels_at = list(self.api.list_channels()), time.monotonic()
        return self._channels


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
