"""A signed delivery with no usable `created_on`, or one far in the future, is not run a second
time once its seen-mark has expired: real Redis, the real app, the mark's expiry played by
deleting it (and the first arrival moved back, as days passing would)."""
from __future__ import annotations

import json
import time

import pytest
import redis

from prepr_automation import store
from prepr_automation.settings import Settings
from webhooks import create_app
from webhooks.intake import UNDATED_TTL, Intake
from webhooks.receiver import FUTURE_SKEW
from webhooks.signature import sign

KEY = "created-on-test-key"
QUEUE = "celery"


def _client(redis_url: str):
    settings = Settings(webhook_secrets=(KEY,), broker_url=redis_url, admin_token="admin")
    intake = Intake(redis.Redis.from_url(redis_url), settings.dedupe_ttl, settings.trace_ttl)
    return create_app(settings, listens=lambda event: True, intake=intake).test_client(), settings


def _post(client, envelope: dict) -> tuple[int, str]:
    body = json.dumps(envelope).encode()
    answer = client.post("/webhooks/prepr", data=body, content_type="application/json",
                         headers={"Prepr-Signature": sign(body, KEY)})
    return answer.status_code, answer.get_json()["status"]


@pytest.mark.parametrize("created", [None, "", "²", "9" * 5000])
def test_an_undated_delivery_is_stale_once_its_mark_could_have_expired(redis_url: str, redis_client: redis.Redis,
                                                                       created: object) -> None:
    client, settings = _client(redis_url)
    envelope = {"id": f"undated-{len(str(created))}", "event": "content_item.changed", "payload": {"id": "p1"}}
    if created is not None:
        envelope["created_on"] = created
    assert _post(client, envelope) == (202, "queued")
    assert _post(client, envelope) == (200, "duplicate")  # within the window: the seen-mark
    key = f"{store.PREFIX}undated:{envelope['id']}"
    assert 0 < redis_client.ttl(key) <= UNDATED_TTL
    redis_client.delete(store.seen_key(envelope["id"]))  # the mark expired ...
    assert _post(client, envelope) == (202, "queued")  # ... but it came back within the window: a retry
    redis_client.delete(store.seen_key(envelope["id"]))
    redis_client.set(key, repr(time.time() - settings.dedupe_ttl - 60))  # ... days later
    assert _post(client, envelope) == (200, "stale")
    assert redis_client.llen(QUEUE) == 2
    trace = client.get(f"/events/{envelope['id']}", headers={"Authorization": "Bearer admin"}).get_json()
    assert trace["received"]["status"] == "stale"  # recorded, not run


@pytest.mark.parametrize("ahead", [FUTURE_SKEW + 60, 3600 * 24 * 365 * 80])
def test_a_delivery_dated_in_the_future_counts_from_its_first_arrival(redis_url: str, redis_client: redis.Redis,
                                                                      ahead: int, ) -> None:
    client, settings = _client(redis_url)
    for created in (int(time.time() + ahead), time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + ahead))):
        envelope = {"id": f"future-{ahead}-{created}", "event": "content_item.changed", "payload": {"id": "p1"},
                    "created_on": created}
        assert _post(client, envelope) == (202, "queued")
        redis_client.delete(store.seen_key(envelope["id"]))
        redis_client.set(f"{store.PREFIX}undated:{envelope['id']}", repr(time.time() - settings.dedupe_ttl - 60))
        assert _post(client, envelope) == (200, "stale")  # never "too young to be stale" forever


@pytest.mark.parametrize("ahead", [-60, 60, FUTURE_SKEW - 10])
def test_a_delivery_dated_now_needs_no_extra_record(redis_url: str, redis_client: redis.Redis, ahead: int) -> None:
    client, _ = _client(redis_url)
    envelope = {"id": f"dated-{ahead}", "event": "content_item.changed", "payload": {"id": "p1"},
                "created_on": int(time.time() + ahead)}
    assert _post(client, envelope) == (202, "queued")
    assert not redis_client.keys(f"{store.PREFIX}undated:*")


def test_the_store_down_for_an_undated_delivery_is_503(redis_url: str) -> None:
    settings = Settings(webhook_secrets=(KEY,), broker_url="redis://127.0.0.1:1/0")
    intake = Intake(redis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2),
                    settings.dedupe_ttl, settings.trace_ttl, backoff=0)
    client = create_app(settings, listens=lambda event: True, intake=intake).test_client()
    body = json.dumps({"id": "undated-down", "event": "content_item.changed", "payload": {}}).encode()
    answer = client.post("/webhooks/prepr", data=body, content_type="application/json",
                         headers={"Prepr-Signature": sign(body, KEY)})
    assert answer.status_code == 503 and answer.headers["Retry-After"]
