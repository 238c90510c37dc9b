"""Item titles in the event list (webhooks/console/titles.py), over real HTTP to the sandbox and the
real Redis: read once, then from the cache; never waiting for a rate-limit slot the worker needs."""
from __future__ import annotations

import time
from types import SimpleNamespace

import redis

from prepr.ratelimit import RateLimiter
from prepr_automation.settings import Settings
from tests.conftest import Sandbox
from tests.tasks.conftest import find_item
from webhooks.console.titles import title_of, titles


def test_titles_are_read_once_and_never_wait_for_the_budget(sandbox: Sandbox, redis_client: redis.Redis) -> None:
    item = find_item(sandbox, "Late winner")["id"]
    settings = Settings(access_token=sandbox.token, api_url=sandbox.url, tracking_url=sandbox.url)
    rows = [SimpleNamespace(id="e1", event="content_item.changed", item=item),
            SimpleNamespace(id="e2", event="asset.created", item="a1")]  # assets: not looked up
    RateLimiter(redis_client, settings.rate_limit, key="prepr").block(30)  # Prepr said 429: the worker waits
    started = time.monotonic()
    assert titles(redis_client, settings, rows) == {} and time.monotonic() - started < 1  # the page did not wait
    assert not sandbox.requests(method="GET", path=f"/content_items/{item}")  # the sandbox serves both: auto finds today's
    redis_client.delete("prepr:ratelimit:prepr:blocked", "prepr:ratelimit:prepr:tat")  # the block is over

    assert titles(redis_client, settings, rows) == {item: "Late winner sends City top of the league"}
    assert titles(redis_client, settings, rows)[item].startswith("Late winner")
    assert len(sandbox.requests(method="GET", path=f"/content_items/{item}")) == 1  # then from the cache
    assert titles(redis_client, Settings(), rows)[item].startswith("Late winner")  # no token: cache and envelopes


def test_a_title_from_the_payload_of_older_deliveries() -> None:
    assert title_of({"id": "p", "body": "Hier Komt De Storm"}) == "Hier Komt De Storm"
    assert title_of({"items": {"nl-NL": {"title": {"body": " Titel "}}}}) == "Titel"
    assert title_of({"id": "p", "items": {"en-GB": {}}}) is None
