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
from prepr_automation.connect import prepr_client
from prepr.errors import PreprError
from prepr.ratelimit import RateLimiter
from prepr_automation.settings import Settings


class BudgetBusy(Exception):
    """The token's rate-limit budget has no slot within the wait a page allows: the worker's calls
    come first, a page does not queue behind them."""


def page_limiter(client: redis.Redis | None, settings: Settings, max_wait: float) -> RateLimiter | None:
    """The worker's shared limiter (every window of PREPR_RATE_LIMIT), but one that gives up
    (BudgetBusy) instead of waiting longer than max_wait seconds for a slot."""
    def sleep(seconds: float) -> None:
        if seconds > max_wait:
            raise BudgetBusy(f"the token's request budget is in use (the next slot is {seconds:.1f} s away)")
        time.sleep(seconds)

    return RateLimiter(client, settings.rate_limit, key="prepr", sleep=sleep) if client is not None else None


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
            api = prepr_client(settings, client, page_limiter(client, settings, max_wait=5.0), timeout=(3.05, 10))
            try:
                if plan is not None:
                    answer = api.get_resource(plan.resource, plan.id, plan.field_list)
                    item = answer if isinstance(answer, dict) else None
                channels = list(api.list_channels()) if needs_channels else None
            except (PreprError, redis.RedisError, BudgetBusy) as exc:
                return {"error": f"Could not read the item from Prepr now, so nothing was evaluated: {exc}"}
            finally:
                api.close()
            source, fetched_at = "fetched", time.time()
    result = evaluate(rules, envelope, item, channels=channels, now=time.time())
    return {"evaluation": result.to_json(), "fetch": plan.to_json() if plan else None, "source": source,
            "fetched_at": fetched_at, "channels": channels is not None}
