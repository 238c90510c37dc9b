"""*Explain against the current rules*: the stored event evaluated as the worker would evaluate it now.

The worker evaluates the envelope together with the item it fetched (only when a rule reads fields
the payload lacks) and Prepr's channel list (only for channel rules); evaluated on the payload
alone, a rule that reads the item's fields sees nothing there and explains as `not_matched`, or a
template fails, and the page would contradict the trace above it. The trace keeps which fields the
run fetched, not the item, so the item is fetched again, now, read-only, with the web's own
PREPR_ACCESS_TOKEN and within the token's shared rate limit; the page says which it used. Nothing
is ever written. `changed` conditions compare with no earlier snapshot, as for an item seen first.
"""
from __future__ import annotations

import time
from typing import Any

import redis

from automation import RuleSet, evaluate
from prepr.client import PreprClient
from prepr.errors import PreprError
from prepr.ratelimit import RateLimiter
from prepr_automation.settings import Settings


def explain(rules: RuleSet, envelope: dict[str, Any], settings: Settings, client: redis.Redis | None) -> dict[str, Any]:
    """{"evaluation", "fetch" (the GET the worker makes, or None), "source", "fetched_at"} or {"error"}.

    source: "fetched" (the item as Prepr has it now), "payload" (no fetch needed), or "no token"
    (a fetch is needed but the web has no PREPR_ACCESS_TOKEN: evaluated on the payload, said so)."""
    event = str(envelope.get("event") or "")
    plan = rules.fetch_plan(envelope)
    needs_channels = rules.needs_channels(event)
    item: dict[str, Any] | None = None
    channels: list[dict[str, Any]] | None = None
    source, fetched_at = "payload", None
    if plan is not None or needs_channels:
        if not settings.access_token:
            source = "no token"
        else:
            limiter = RateLimiter(client, settings.rate_limit, key="prepr") if client is not None else None
            api = PreprClient(settings.api_url, settings.access_token, settings.tracking_url, rate_limiter=limiter,
                              timeout=(3.05, 10))
            try:
                if plan is not None:
                    answer = api.request("GET", plan.path, params=list(plan.params) or None)
                    item = answer if isinstance(answer, dict) else None
                channels = list(api.list_channels()) if needs_channels else None
            except (PreprError, redis.RedisError) as exc:
                return {"error": f"Could not read the item from Prepr now, so nothing was evaluated: {exc}"}
            finally:
                api.close()
            source, fetched_at = "fetched", time.time()
    result = evaluate(rules, envelope, item, channels=channels, now=time.time())
    return {"evaluation": result.to_json(), "fetch": plan.to_json() if plan else None, "source": source,
            "fetched_at": fetched_at, "channels": channels is not None}
