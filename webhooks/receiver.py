"""What the receiver answers to a delivery whose size and content type have been checked.

Free of any web framework. Order fixed by the contract: signature over the raw bytes (401), then
parse and validate (400), then dedupe + enqueue (200 / 202 / 503). A delivery whose created_on
is older than the dedupe window is answered 200 "stale" and recorded, never run: its seen-mark
may have expired, so it cannot be told from a replay of one already processed.
"""
from __future__ import annotations

import json
import time
from typing import Any, Callable, Sequence

from .envelope import created_epoch, validate_envelope
from .intake import BrokerUnavailable, Delivery, Intake, Outcome, embeddable
from .signature import verify

RETRY_AFTER = "10"
FUTURE_SKEW = 300  # seconds a sender's clock may be ahead
Listens = Callable[[str], bool]
Answer = tuple[int, dict[str, Any], "dict[str, str] | None"]


def render(payload: dict[str, Any]) -> bytes:
    """The one JSON form every answer uses."""
    return json.dumps(payload, separators=(",", ":")).encode()


class Receiver:
    """Verify, parse, validate, then accept; every outcome is an Answer, never an exception."""

    def __init__(self, secrets: Sequence[str], intake: Intake, listens: Listens) -> None:
        self.secrets = tuple(secrets)
        self.intake = intake
        self.listens = listens

    def answer(self, body: bytes, signature: str | None) -> Answer:
        if not verify(body, signature, self.secrets):
            return 401, {"error": "missing or invalid Prepr-Signature"}, None
        try:
            envelope = json.loads(body)
        except (ValueError, RecursionError):
            return 400, {"error": "body is not valid JSON", "field": None}, None
        errors = validate_envelope(envelope, body)
        if errors:
            field = sorted(errors)[0]
            return 400, {"error": f"invalid envelope: {field}: {errors[field][0]}",
                         "field": field, "fields": errors}, None
        status: Outcome = "queued" if self.listens(envelope["event"]) else "ignored"
        try:
            if self._stale(envelope):
                status = "stale"
            outcome = self.intake.accept(Delivery(envelope, body if embeddable(body) else None), status)
        except BrokerUnavailable:
            return 503, {"error": "broker unavailable, retry later"}, {"Retry-After": RETRY_AFTER}
        return (200 if outcome in ("duplicate", "stale") else 202), {"status": outcome, "event_id": envelope["id"]}, None

    def _stale(self, envelope: dict[str, Any]) -> bool:
        """Too old to tell from a replay of a delivery whose seen-mark has expired. A delivery
        without a usable created_on, or with one more than FUTURE_SKEW ahead (it would never turn
        old), counts from its first arrival, which the store remembers far longer than the mark."""
        created = created_epoch(envelope.get("created_on"))
        now = time.time()
        if created is None or created > now + FUTURE_SKEW:
            created = self.intake.first_arrival(str(envelope["id"]), now)
        return created < now - self.intake.dedupe_ttl
