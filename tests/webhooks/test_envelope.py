"""The envelope pre-check agrees with the schema, and the queued message holds what the door parsed."""
from __future__ import annotations

import base64
import json
from itertools import product

import pytest
import redis

from tests.conftest import read_deliveries
from tests.webhooks.test_receiver import KEY, make_app
from webhooks.envelope import _SCHEMA, plainly_valid, validate_envelope
from tasks.messages import EVENTS_QUEUE as QUEUE
from webhooks.signature import sign

ODD_VALUES = [None, "", " ", "0", "12", "x", "x" * 200, "x" * 201, "2022-02-06T15:55:24Z", "yesterday",
              0, 1, -1, 1.5, float("nan"), True, False, [], [1], {}, {"id": "u1"}, {"id": 5}, {"x": 1}]


def _schema_accepts(data: object) -> bool:
    return not _SCHEMA.validate(data)


def test_every_real_delivery_takes_the_precheck_and_the_schema_agrees() -> None:
    for raw in read_deliveries():
        envelope = json.loads(raw)
        assert plainly_valid(envelope), raw[:200]
        assert _schema_accepts(envelope), raw[:200]


@pytest.mark.parametrize("key", ["id", "event", "payload", "created_on", "performed_by", "dc", "other"])
def test_precheck_never_accepts_what_the_schema_rejects(key: str) -> None:
    base = {"id": "e1", "event": "content_item.changed", "payload": {}, "created_on": 1}
    for value, drop in product(ODD_VALUES, (False, True)):
        data = dict(base)
        if drop:
            data.pop(key, None)
        else:
            data[key] = value
        if plainly_valid(data):
            assert _schema_accepts(data), data
        assert (validate_envelope(data) == {}) == _schema_accepts(data), data


@pytest.mark.parametrize("body", [
    '{"id":"u1","event":"content_item.changed","payload":{"title":"Café \\u00e9 ☕"}}'.encode(),
    b"\xef\xbb\xbf" + b'{"id":"u2","event":"e","payload":{}}',                        # UTF-8 BOM
    '{"id":"u3","event":"e","payload":{"a":1}}'.encode("utf-16"),                   # UTF-16
    b'{"id":"u5","event":"e","payload":{"n":1e400,"d":1,"d":2,"f":0.1000000000000000055511}}',
])
def test_queued_message_holds_what_the_receiver_parsed(body: bytes, redis_url: str,
                                                       redis_client: redis.Redis) -> None:
    """Whether the raw bytes are embedded or re-serialised, the worker decodes the same envelope."""
    app = make_app(redis_url, max_body_bytes=4096)
    response = app.test_client().post("/webhooks/prepr", data=body, content_type="application/json",
                                      headers={"Prepr-Signature": sign(body, KEY)})
    assert response.status_code == 202, response.get_data()
    message = json.loads(redis_client.lpop(QUEUE))
    args, kwargs, embed = json.loads(base64.b64decode(message["body"]).decode("utf-8"))  # as kombu does
    assert args == [json.loads(body)] or json.dumps(args) == json.dumps([json.loads(body)])  # nan/inf-safe
    assert kwargs == {} and embed == {"callbacks": None, "errbacks": None, "chain": None, "chord": None}
    assert message["headers"]["id"] == message["headers"]["root_id"] == message["properties"]["correlation_id"]


@pytest.mark.parametrize("body", [
    b'{"id":"u4","event":"e","payload":{"s":"\xed\xa0\x80"}}',  # a lone surrogate, encoded (surrogatepass)
    b'{"id":"u6","event":"e","payload":{"s":"\\ud800"}}',        # the same, escaped
    b'{"id":"u7","event":"e","payload":{"s":"\\uDC00x"}}',       # a low one, upper-case hex
])
def test_strings_that_utf8_cannot_store_are_400(body: bytes, redis_url: str, redis_client: redis.Redis) -> None:
    app = make_app(redis_url, max_body_bytes=4096)
    response = app.test_client().post("/webhooks/prepr", data=body, content_type="application/json",
                                      headers={"Prepr-Signature": sign(body, KEY)})
    assert (response.status_code, response.get_json()["field"]) == (400, "payload"), response.get_data()
    assert redis_client.dbsize() == 0
