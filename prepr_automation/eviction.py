"""Is Redis allowed to evict our keys? Web and worker warn at start and /health reports it.

Redis is this service's queue and memory (queued events, dedupe records, item locks, dead
letters). A maxmemory-policy other than `noeviction`, common on managed plans, lets Redis drop
any of them silently once memory is full: an acknowledged event lost, a duplicate processed
twice. Nothing here refuses to run (a plan may not let the owner change it); it says so loudly,
as Sidekiq does. Managed Redis often forbids CONFIG GET, so INFO memory is the fallback.
"""
from __future__ import annotations

import logging
import time
from typing import Any

import redis

log = logging.getLogger("prepr_automation.eviction")
SAFE = "noeviction"


def policy(client: redis.Redis) -> str | None:
    """Redis's maxmemory-policy, or None when it cannot be read (Redis unreachable)."""
    try:
        try:
            found = client.config_get("maxmemory-policy")
            value: Any = next(iter(found.values()), None)
        except redis.ResponseError:  # CONFIG disabled or not permitted (managed Redis)
            value = client.info("memory").get("maxmemory_policy")
    except redis.RedisError:
        return None
    return value.decode() if isinstance(value, bytes) else value


def warning(current: str | None) -> str | None:
    if current is None or current == SAFE:
        return None
    return (f"Redis maxmemory-policy is {current}: when its memory is full Redis deletes keys, queued events "
            f"and dedupe records among them; set it to {SAFE} (docs/operations.md)")


class EvictionCheck:
    """The policy of one Redis, read at most once a minute (/health is polled often)."""

    def __init__(self, client: redis.Redis, ttl: float = 60.0) -> None:
        self.client, self.ttl = client, ttl
        self._at, self._policy = -ttl, None

    def current(self) -> str | None:
        if time.monotonic() - self._at >= self.ttl:
            self._policy, self._at = policy(self.client), time.monotonic()
        return self._policy

    def warn(self, logger: logging.Logger = log) -> None:
        """One WARNING line when the policy lets Redis evict (for a process's start)."""
        message = warning(self.current())
        if message:
            logger.warning(message)

    def report(self) -> dict[str, Any]:
        """For /health: the policy, and the warning when there is one."""
        current = self.current()
        message = warning(current)
        return {"maxmemory_policy": current, **({"warning": message} if message else {})}
