"""The intake's own retry: an attempt that landed but whose answer was lost is recognised as
queued (never a 503 hiding a queued message, never a self-inflicted duplicate)."""
from __future__ import annotations

import json
from typing import Any

import redis

from prepr_automation import store
from tasks.messages import EVENTS_QUEUE, Enqueue
from webhooks.intake import Intake


class LosesFirstAnswer(redis.Redis):
    """The first script call runs on the real server, but its answer is lost as on a timeout."""

    lost = False

    def execute_command(self, *args: Any, **options: Any) -> Any:
        result = super().execute_command(*args, **options)
        if args[0] in ("EVALSHA", "EVAL") and not self.lost:
            self.lost = True
            raise redis.TimeoutError("the answer was lost")
        return result


def test_a_retry_recognises_its_own_landed_attempt(redis_url: str, redis_client: redis.Redis) -> None:
    intake = Intake(LosesFirstAnswer.from_url(redis_url), 60, 60, backoff=0)
    envelope = {"id": "lost-answer", "event": "content_item.changed", "payload": {}}
    assert intake.accept(envelope, "queued") == "queued"
    assert redis_client.llen(EVENTS_QUEUE) == 1
    trace = store.read_trace(redis_client, "lost-answer")
    assert trace is not None and "duplicates" not in trace
    assert trace["received"]["task_id"] == json.loads(redis_client.lindex(EVENTS_QUEUE, 0))["headers"]["id"]
    assert intake.accept(envelope, "queued") == "duplicate"  # Prepr's resend: the same delivery
    assert redis_client.llen(EVENTS_QUEUE) == 1


def test_the_shared_script_tells_again_from_duplicate(redis_url: str, redis_client: redis.Redis) -> None:
    enqueue = Enqueue(redis_client)
    common: dict[str, Any] = {"queue": EVENTS_QUEUE, "seen_ttl": 60, "trace_ttl": 60}
    assert enqueue("e", "token-1", b"m", "{}", **common) == "new"
    assert enqueue("e", "token-1", b"m", "{}", **common) == "again"
    assert enqueue("e", "token-2", b"m", "{}", **common) == "duplicate"
    assert redis_client.llen(EVENTS_QUEUE) == 1 and redis_client.ttl(store.seen_key("e")) > 0
