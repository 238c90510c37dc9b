"""SPEC §5 as a table (cases.json), against the Flask app and a real Redis."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import redis

from prepr_automation import store
from prepr_automation.settings import Settings
from tests.conftest import FIXTURES, read_deliveries
from webhooks import create_app
from webhooks.intake import QUEUE, Intake
from webhooks.signature import sign

KEY = "62d77be4-d41d-4878-bffc-ed4a047a9101"
SECOND = "second-rotation-key"
CASES = json.loads((Path(__file__).parent / "cases.json").read_text())
LIMIT = 4096


def make_app(redis_url: str, listens=None, **overrides):
    options = {"max_body_bytes": LIMIT, "admin_token": "admin-secret", **overrides}
    settings = Settings(webhook_secrets=(KEY, SECOND), broker_url=redis_url, **options)
    intake = Intake(redis.Redis.from_url(redis_url), settings.dedupe_ttl, settings.trace_ttl)
    return create_app(settings, listens=listens or (lambda event: True), intake=intake)


def _raw(case: dict) -> bytes:
    raw = case.get("raw")
    if raw == "OVERSIZE":
        return b'{"id": "big", "event": "x", "payload": {"pad": "' + b"x" * LIMIT + b'"}}'
    if raw == "BADUTF8":
        return b'{"id": "\xff\xfe", "event": "x", "payload": {}}'
    if raw == "DEEP":
        return b"[" * 2000 + b"]" * 2000
    if raw is not None:
        return raw.encode()
    return json.dumps(case["body"]).encode()


def _signature(case: dict, body: bytes) -> str | None:
    kind = case.get("signature", "valid")
    return {
        None: None,
        "valid": sign(body, KEY),
        "second-key": sign(body, SECOND),
        "other-key": sign(body, "not-a-configured-key"),
        "UPPER": sign(body, KEY).upper(),
        "garbage": sign(b"other bytes", KEY),
    }[kind]


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_contract_table(case: dict, redis_url: str, redis_client: redis.Redis) -> None:
    client = make_app(redis_url).test_client()
    body = _raw(case)
    headers = {}
    signature = _signature(case, body)
    if signature is not None:
        headers["Prepr-Signature"] = signature
    content_type = case.get("content_type", "application/json")
    response = client.post("/webhooks/prepr", data=body, headers=headers, content_type=content_type)
    assert response.status_code == case["status"], response.get_data(as_text=True)
    assert response.is_json
    payload = response.get_json()
    if "response" in case:
        assert payload == case["response"]
    if case["status"] == 400:
        assert payload["field"] == case["field"]
        assert "error" in payload
    assert redis_client.llen(QUEUE) == case["queued"]
    if case["queued"] == 0:
        assert not redis_client.keys(store.seen_key("*"))


def test_signature_vector_is_accepted(redis_url: str, redis_client: redis.Redis) -> None:
    body = (FIXTURES / "signature-vector.json").read_bytes()
    client = make_app(redis_url).test_client()
    response = client.post("/webhooks/prepr", data=body, content_type="application/json",
                           headers={"Prepr-Signature": "24388cb0112ac5448ba4da3079260c3d28fdbb2a7ea59f1e791d7c09843c0ad8"})
    assert response.status_code == 202
    assert redis_client.llen(QUEUE) == 1


def test_duplicate_is_200_and_enqueued_once(redis_url: str, redis_client: redis.Redis) -> None:
    client = make_app(redis_url).test_client()
    body = json.dumps({"id": "dup-1", "event": "content_item.created", "payload": {}}).encode()
    headers = {"Prepr-Signature": sign(body, KEY)}
    first = client.post("/webhooks/prepr", data=body, headers=headers, content_type="application/json")
    second = client.post("/webhooks/prepr", data=body, headers=headers, content_type="application/json")
    assert first.status_code == 202
    assert (second.status_code, second.get_json()["status"]) == (200, "duplicate")
    assert redis_client.llen(QUEUE) == 1
    trace = client.get("/events/dup-1", headers={"Authorization": "Bearer admin-secret"}).get_json()
    assert trace["received"]["status"] == "queued" and trace["duplicates"] == 1


def test_ignored_event_is_recorded_not_queued(redis_url: str, redis_client: redis.Redis) -> None:
    client = make_app(redis_url, listens=lambda event: event.startswith("content_item.")).test_client()
    body = json.dumps({"id": "ign-1", "event": "asset.changed", "payload": {}}).encode()
    response = client.post("/webhooks/prepr", data=body, content_type="application/json",
                           headers={"Prepr-Signature": sign(body, KEY)})
    assert (response.status_code, response.get_json()["status"]) == (202, "ignored")
    assert redis_client.llen(QUEUE) == 0
    assert redis_client.exists(store.trace_key("ign-1"))


@pytest.mark.parametrize("path,headers,status", [
    ("/webhooks/prepr", {}, 200),
    ("/health", {}, 200),
    ("/events/nope", {"Authorization": "Bearer admin-secret"}, 404),
    ("/events/nope", {"Authorization": "Bearer wrong"}, 401),
    ("/events/nope", {}, 401),
    ("/no/such/path", {}, 404),
])
def test_get_endpoints(path: str, headers: dict, status: int, redis_url: str) -> None:
    response = make_app(redis_url).test_client().get(path, headers=headers)
    assert response.status_code == status
    assert response.is_json


def test_events_endpoint_is_off_without_admin_token(redis_url: str) -> None:
    settings = Settings(webhook_secrets=(KEY,), broker_url=redis_url)
    app = create_app(settings, listens=lambda e: True,
                     intake=Intake(redis.Redis.from_url(redis_url), 60, 60))
    assert app.test_client().get("/events/x", headers={"Authorization": "Bearer "}).status_code == 404


def test_wrong_method_is_json_405(redis_url: str) -> None:
    response = make_app(redis_url).test_client().delete("/webhooks/prepr")
    assert response.status_code == 405 and response.is_json


def test_every_real_delivery_is_accepted(redis_url: str, redis_client: redis.Redis) -> None:
    """All 14,256 captured Prepr deliveries, signed and posted: none rejected, none lost."""
    client = make_app(redis_url, max_body_bytes=1_048_576).test_client()
    statuses: dict[int, int] = {}
    ids = set()
    for body in read_deliveries():
        response = client.post("/webhooks/prepr", data=body, content_type="application/json",
                               headers={"Prepr-Signature": sign(body, KEY)})
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        ids.add(json.loads(body)["id"])
    assert sum(statuses.values()) == 14_256
    assert set(statuses) <= {200, 202}, statuses
    assert redis_client.llen(QUEUE) == statuses[202] == len(ids)
