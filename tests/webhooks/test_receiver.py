"""SPEC §5 as a table (cases.json), against the Flask app and a real Redis."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import redis

from prepr_automation import store
from prepr_automation.settings import Settings
from tests.conftest import FIXTURES, read_deliveries
from tests.webhooks.deliveries import recent
from webhooks import create_app
from tasks.messages import EVENTS_QUEUE as QUEUE
from webhooks.intake import Intake
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
    if raw in ("DEEP40", "DEEP31"):  # the envelope is level 1, so the payload may hold 30 more
        depth = 40 if raw == "DEEP40" else 31
        return b'{"id": "deep", "event": "e", "created_on": "", "payload": ' + b'{"a": ' * depth + b"1" + b"}" * depth + b"}"
    if raw in ("LONGID", "LONGEVENT"):
        ident, event = ("x" * 201, "e") if raw == "LONGID" else ("i", "e" * 201)
        return json.dumps({"id": ident, "event": event, "payload": {}}).encode()
    if raw == "HUGEDIGITS":
        return json.dumps({"id": "digits", "event": "e", "created_on": "9" * 4000, "payload": {}}).encode()
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
        assert bool(redis_client.keys(store.seen_key("*"))) == case.get("recorded", False)
        assert bool(redis_client.keys(store.trace_key("*"))) == case.get("recorded", False)


def test_signature_vector_is_accepted(redis_url: str, redis_client: redis.Redis) -> None:
    body = (FIXTURES / "signature-vector.json").read_bytes()
    client = make_app(redis_url).test_client()
    response = client.post("/webhooks/prepr", data=body, content_type="application/json",
                           headers={"Prepr-Signature": "24388cb0112ac5448ba4da3079260c3d28fdbb2a7ea59f1e791d7c09843c0ad8"})
    assert response.get_json()["status"] == "stale"  # verified; made in 2018, so recorded, not run
    assert redis_client.llen(QUEUE) == 0 and redis_client.exists(store.trace_key(json.loads(body)["id"]))


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
    """All 14,256 captured Prepr deliveries, signed and posted, made recent: none rejected, none lost.
    As captured (2022) they are older than the dedupe window: the first thousand answer stale."""
    client = make_app(redis_url, max_body_bytes=1_048_576).test_client()
    statuses: dict[int, int] = {}
    ids = set()
    for n, captured in enumerate(read_deliveries()):
        if n < 1000:
            stale = client.post("/webhooks/prepr", data=captured, content_type="application/json",
                                headers={"Prepr-Signature": sign(captured, KEY)})
            assert stale.status_code == 200 and stale.get_json()["status"] in ("stale", "duplicate"), captured
            redis_client.delete(store.seen_key(json.loads(captured)["id"]))
        body = recent(captured)
        response = client.post("/webhooks/prepr", data=body, content_type="application/json",
                               headers={"Prepr-Signature": sign(body, KEY)})
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        ids.add(json.loads(body)["id"])
    assert sum(statuses.values()) == 14_256
    assert set(statuses) <= {200, 202}, statuses
    assert redis_client.llen(QUEUE) == statuses[202] == len(ids)
