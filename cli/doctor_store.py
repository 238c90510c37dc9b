"""`doctor`'s look at Redis, the service's queue and memory: reachable, never evicting, with room.

Read with INFO (and CONFIG GET where allowed: managed plans often forbid CONFIG, so INFO is the
fallback, as in prepr_automation/eviction.py). Nothing is written and no embedded server is
started: with no Redis URL set, only the embedded Redis of a running `dev` in this folder counts.
The URL is never printed (it may carry a password): only its host and port.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import redis

from prepr_automation import eviction, store
from prepr_automation.settings import Settings

from .doctor_lines import Line, bad, good

FULL = 0.9  # memory or connections beyond this share of the limit is a ✗


def _where(url: str) -> str:
    parsed = urlparse(url)
    if parsed.scheme in ("redis+socket", "socket", "unix"):
        return f"the Redis at {parsed.path}"
    return f"the Redis at {parsed.hostname}:{parsed.port or 6379}"


def _limit(client: redis.Redis, name: str, section: str, field: str) -> int:
    """A configured limit: CONFIG GET, else INFO's copy of it (0 when unknown or unlimited)."""
    try:
        value: Any = next(iter(client.config_get(name).values()), None)
    except redis.ResponseError:  # CONFIG disabled or not permitted
        value = None
    if value is None:
        value = client.info(section).get(field)
    try:
        return int(value.decode() if isinstance(value, bytes) else value or 0)
    except ValueError:
        return 0


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def connect(settings: Settings) -> tuple[redis.Redis | None, str, Line | None]:
    """(client or None, where, a ✗ line when there is no Redis to ask)."""
    url = settings.broker_url
    if url is None:
        sock = Path(settings.data_dir).resolve() / store.SOCKET_NAME
        if not sock.exists():
            return None, "", bad("no Redis is configured: CELERY_BROKER_URL and REDIS_URL are unset",
                                 "set REDIS_URL to the deployment's Redis (the embedded one serves one machine)")
        url = f"redis+socket://{sock}"
    return store.redis_client(url, 3.0, settings.redis_tls_verify), _where(url), None


def redis_lines(client: redis.Redis, where: str, password: str | None = None) -> list[Line]:
    """Reachable; maxmemory-policy noeviction; memory and connections under FULL of their limits."""
    try:
        client.ping()
        memory, clients = client.info("memory"), client.info("clients")
        policy = eviction.policy(client)
        maxmemory = _limit(client, "maxmemory", "memory", "maxmemory")
        maxclients = _limit(client, "maxclients", "clients", "maxclients")
    except redis.RedisError as exc:
        reason = f"{type(exc).__name__}: {exc}"[:200]
        if password:
            reason = reason.replace(password, "***")
        return [bad(f"{where} is not reachable ({reason})",
                    "check REDIS_URL / CELERY_BROKER_URL (and REDIS_TLS_VERIFY for rediss://)")]
    lines = [good(f"{where} answers")]
    if policy == eviction.SAFE:
        lines.append(good(f"its maxmemory-policy is {eviction.SAFE}"))
    elif policy is None:
        lines.append(bad("its maxmemory-policy cannot be read (neither CONFIG GET nor INFO names it)",
                         f"make sure the Redis plan's maxmemory-policy is {eviction.SAFE} (docs/operations.md)"))
    else:
        lines.append(bad(f"its maxmemory-policy is {policy}: once memory is full, Redis deletes keys, queued events "
                         "and dedupe records among them", f"set maxmemory-policy to {eviction.SAFE} in the Redis "
                         "plan's settings (docs/operations.md)"))
    used = int(memory.get("used_memory", 0))
    if not maxmemory:
        lines.append(good(f"memory: {_size(used)} used, no maxmemory limit set"))
    elif used > FULL * maxmemory:
        lines.append(bad(f"memory is {used / maxmemory:.0%} full: {_size(used)} of {_size(maxmemory)}",
                         "replay or clear dead letters, lower HISTORY_MAX_BYTES, or move to a plan with more "
                         "memory"))
    else:
        lines.append(good(f"memory: {_size(used)} of {_size(maxmemory)} used ({used / maxmemory:.0%})"))
    connected = int(clients.get("connected_clients", 0))
    if maxclients and connected > FULL * maxclients:
        lines.append(bad(f"connections: {connected} of its maxclients {maxclients} in use",
                         "lower REDIS_MAX_CONNECTIONS or WORKER_CONCURRENCY, or move to a plan with more "
                         "connections"))
    else:
        lines.append(good(f"connections: {connected} in use" + (f" of its maxclients {maxclients}" if maxclients
                                                                else "")))
    return lines
