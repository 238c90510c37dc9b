"""The one place that turns settings into a Prepr client: token, URLs, limiter, and the dialect.

`prepr/` knows nothing of the service; this joins it to the settings and the store, so the
worker, the console and the command line speak the same dialect (PREPR_API, or what the store
remembers of `auto`: found out on the first call to Prepr, then kept a day for every process).
"""
from __future__ import annotations

from typing import Any

import redis

from prepr.client import PreprClient
from prepr.dialects import DIALECTS, detect
from prepr.ratelimit import RateLimiter

from . import dialect
from .settings import Settings


def prepr_client(settings: Settings, client: redis.Redis | None, rate_limiter: RateLimiter | Any = None,
                 **options: Any) -> PreprClient:
    """`client` None: a dialect found out is not remembered (a read-only or dry-run command)."""
    api = PreprClient(settings.api_url, settings.access_token or "", settings.tracking_url,
                      rate_limiter=rate_limiter, customers_url=settings.customers_url,
                      dialect=lambda: DIALECTS[dialect.resolve(settings, client, lambda: detect(api).name)],
                      **options)
    return api
