"""Which REST dialect the configured Prepr speaks (SPEC §9), decided once per API URL and kept a day.

`PREPR_API=content_items|publications` is taken as said. `auto` asks Prepr once (the caller
passes how: prepr.dialects.detect) and keeps the answer in the store for a day, so every
process of a deployment agrees and /health, the console and `doctor` can show it without a call.
"""
from __future__ import annotations

import hashlib
import logging
import time
from typing import Callable

import redis

from .settings import Settings
from .store import PREFIX

log = logging.getLogger("prepr_automation.dialect")
TTL = 24 * 3600
CLAIM_SECONDS = 5.0


def _key(api_url: str) -> str:
    return f"{PREFIX}dialect:{hashlib.sha256(api_url.encode()).hexdigest()[:16]}"


def known(settings: Settings, client: redis.Redis | None) -> tuple[str | None, str]:
    """(dialect or None, how it is known) without asking Prepr: the setting, else the store."""
    if settings.prepr_api != "auto":
        return settings.prepr_api, "PREPR_API"
    if client is None:
        return None, "auto: not decided yet"
    try:
        raw = client.get(_key(settings.api_url))
    except redis.RedisError:
        return None, "auto: the store is not reachable"
    if not raw:
        return None, "auto: decided on the first call to Prepr"
    return raw.decode(), "auto: detected, kept for a day"


def resolve(settings: Settings, client: redis.Redis | None, detect: Callable[[], str]) -> str:
    """The dialect to speak: the setting, the store's answer, or `detect()` (then remembered).

    Processes starting together ask Prepr once: the first takes a short claim and asks, the
    others wait for its answer (a few seconds at most, then ask themselves)."""
    name, _ = known(settings, client)
    if name is not None:
        return name
    if client is not None and not _claim(client, settings.api_url):
        deadline = time.monotonic() + CLAIM_SECONDS
        while time.monotonic() < deadline:
            time.sleep(0.05)
            name, _ = known(settings, client)
            if name is not None:
                return name
    name = detect()
    log.info("Prepr at %s speaks the %s dialect (PREPR_API=auto, kept for a day)", settings.api_url, name)
    if client is not None:
        try:
            client.set(_key(settings.api_url), name, ex=TTL)
        except redis.RedisError:
            pass  # asked again by the next process: harmless
    return name


def _claim(client: redis.Redis, api_url: str) -> bool:
    try:
        return bool(client.set(_key(api_url).replace("dialect:", "dialect-asking:"), "1", nx=True,
                               ex=CLAIM_SECONDS))
    except redis.RedisError:
        return True


def forget(settings: Settings, client: redis.Redis) -> None:
    client.delete(_key(settings.api_url))
