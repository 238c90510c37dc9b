"""What reaches Sentry from a failing request holds no secret and no body."""
from __future__ import annotations

import json

import redis
import sentry_sdk
from sentry_sdk.transport import Transport

from prepr_automation.observability import init_sentry
from prepr_automation.settings import Settings
from webhooks import create_app
from webhooks.intake import Intake
from webhooks.signature import sign

SECRET = "webhook-key-5f2a9c"
TOKEN = "prepr-token-77d1e0"
ADMIN = "admin-token-a81c"
PRIVATE = "".join(["pri", "vate-", "payload"])  # built so that no source line shows it


class LocalTransport(Transport):
    """Keeps envelopes in memory instead of sending them anywhere."""

    def __init__(self, options=None) -> None:
        super().__init__(options)
        self.sent: list[bytes] = []

    def capture_envelope(self, envelope) -> None:
        self.sent.append(envelope.serialize())


def test_sentry_event_holds_no_secret(redis_url: str) -> None:
    settings = Settings(webhook_secrets=(SECRET,), access_token=TOKEN, admin_token=ADMIN, broker_url=redis_url)
    transport = LocalTransport()
    assert init_sentry(settings, "web", transport=transport)
    try:
        intake = Intake(redis.Redis.from_url(redis_url), 60, 60)
        original = intake.accept

        def exploding(envelope, enqueue):
            raise RuntimeError(f"upstream refused Bearer {TOKEN} for key {SECRET}")

        intake.accept = exploding  # the failure under test: an unexpected error deep in the path
        app = create_app(settings, listens=lambda e: True, intake=intake)
        body = json.dumps({"id": "s1", "event": "content_item.changed", "payload": {"title": PRIVATE}}).encode()
        signature = sign(body, SECRET)
        response = app.test_client().post("/webhooks/prepr", data=body, content_type="application/json",
                                          headers={"Prepr-Signature": signature, "Authorization": f"Bearer {ADMIN}"})
        assert response.status_code == 500
        sentry_sdk.flush()
        assert transport.sent, "the error was not reported"
        captured = b"".join(transport.sent).decode()
        assert "upstream refused" in captured  # the report is there ...
        for secret in (SECRET, TOKEN, ADMIN, signature, PRIVATE):
            assert secret not in captured  # ... without anything secret
        intake.accept = original
    finally:
        sentry_sdk.init()  # back to a disabled client
