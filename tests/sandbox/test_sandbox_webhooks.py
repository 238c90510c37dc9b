"""The sandbox's webhooks: signed like Prepr's, real envelope, performed_by, retried."""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from webhooks.signature import verify

SECRET = "62d77be4-d41d-4878-bffc-ed4a047a9101"


class Receiver:
    """A tiny real HTTP receiver: records each delivery; answers `fail_first` deliveries with 500."""

    def __init__(self, fail_first: int = 0) -> None:
        self.deliveries: list[tuple[bytes, dict[str, str]]] = []
        self.fail_first = fail_first
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.deliveries.append((body, dict(self.headers)))
                failing = len(receiver.deliveries) <= receiver.fail_first
                self.send_response(500 if failing else 202)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/webhooks/prepr"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, count: int, timeout: float = 15) -> list[dict]:
        deadline = time.monotonic() + timeout
        while len(self.deliveries) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return [json.loads(body) for body, _ in self.deliveries]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    rec = Receiver()
    yield rec
    rec.close()


def test_every_change_sends_a_signed_webhook(sandbox_factory, receiver):
    sandbox = sandbox_factory(webhook_url=receiver.url, webhook_secret=SECRET)
    client = sandbox.client()
    created = client.create_item({"model": {"body": "News"}, "locales": ["en-GB"], "status": "draft",
                                         "items": {"en-GB": {"title": {"body": "Breaking"}}}})
    client.write_item(created["id"], {"items": {"en-GB": {"intro": {"body": "More soon"}}}})
    client.write_item(created["id"], {"status": "published"})
    client.delete_item(created["id"])
    events = receiver.wait_for(5)
    assert [e["event"] for e in events] == ["content_item.created", "content_item.changed", "content_item.changed",
                                           "content_item.published", "content_item.deleted"]
    for (body, headers), envelope in zip(receiver.deliveries, events):
        assert verify(body, headers["Prepr-Signature"], [SECRET])
        assert not verify(body, headers["Prepr-Signature"], ["another-key"])
        assert isinstance(envelope["created_on"], int) and len(envelope["id"]) == 36
        assert envelope["performed_by"] == {"id": sandbox.user_id}
        payload = envelope["payload"]
        assert payload["id"] == created["id"] and payload["label"] == "Publication"
        assert payload["model"]["body"] == "News" and "items" not in payload  # slim, like newer Prepr
    assert len({e["id"] for e in events}) == 5


def test_acting_user_header_and_bulk_webhooks(sandbox_factory, receiver):
    from sandbox.seed import PERSONS

    sandbox = sandbox_factory(webhook_url=receiver.url, webhook_secret=SECRET)
    client = sandbox.client()
    editor = PERSONS[1]["id"]
    target = next(client.list_items({"title": {"fz": "risotto"}}, fields="id"))
    client.session.headers["X-Sandbox-User"] = editor
    client.write_item(target["id"], {"items": {"en-GB": {"intro": {"body": "Edited by hand"}}}})
    del client.session.headers["X-Sandbox-User"]
    recipes = [p["id"] for p in client.list_items({"model": {"eq": "Recipe"}}, fields="id")]
    assert client.bulk_webhooks({"model": {"eq": "Recipe"}}, "content_item.published")["total"] == len(recipes)
    events = receiver.wait_for(1 + len(recipes))
    assert events[0]["performed_by"] == {"id": editor} and events[0]["event"] == "content_item.changed"
    assert sorted(e["payload"]["id"] for e in events[1:]) == sorted(recipes)
    assert {e["event"] for e in events[1:]} == {"content_item.published"}
    assert sandbox.requests(method="PUT")[0]["user"] == editor


def test_failed_deliveries_are_retried(sandbox_factory):
    receiver = Receiver(fail_first=2)
    try:
        sandbox = sandbox_factory()
        sandbox.configure_webhooks(receiver.url, SECRET)
        assert sandbox.client().bulk_webhooks({"title": {"fz": "risotto"}}, "content_item.changed")["total"] == 1
        receiver.wait_for(3)
        assert sandbox.flush_webhooks()
        bodies = [body for body, _ in receiver.deliveries]
        assert len(bodies) == 3 and bodies[0] == bodies[1] == bodies[2]  # the same delivery, resent
        first = sandbox.webhooks()["deliveries"][0]
        assert first["attempts"] == 3 and first["status"] == 202
    finally:
        receiver.close()
