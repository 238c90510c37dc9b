"""Dead letters: events (or bulk jobs) that failed for good, kept until replayed.

Each letter holds what an operator needs to understand and re-run the failure: the envelope
(or bulk job), the reason, the rule id, the request (method, path, no token), the response
status and body excerpt, attempts and the error. Nothing is dropped on replay until the
replayed task is on the broker.
"""
from __future__ import annotations

import json
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any, Iterator

import redis
import sentry_sdk

from prepr_automation.observability import scrub_stored
from prepr_automation.store import PREFIX

INDEX = f"{PREFIX}dead"
CLAIM_SECONDS = 300  # a replay in progress (sending one task takes far less)
REPLAYED_SECONDS = 24 * 3600


def _key(letter_id: str) -> str:
    return f"{PREFIX}dead:{letter_id}"


@dataclass
class DeadLetter:
    event_id: str
    reason: str
    task: str  # the task to re-run: tasks.process_event or tasks.run_bulk
    args: list[Any]  # its JSON-able arguments
    rule_id: str | None = None
    request: dict[str, Any] | None = None
    response: dict[str, Any] | None = None
    attempts: int = 1
    error: str | None = None
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    at: float = field(default_factory=time.time)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class DeadLetters:
    def __init__(self, client: redis.Redis, secrets: list[str] | None = None) -> None:
        self.client = client
        self.secrets = secrets or []  # observability.secret_values: scrubbed from what is kept

    def add(self, letter: DeadLetter, report: bool = True) -> str:
        """Keep the letter; report it to Sentry (when configured) as the one event of this failure."""
        with self.client.pipeline() as pipe:
            pipe.set(_key(letter.id), json.dumps(scrub_stored(letter.to_json(), self.secrets)))
            pipe.zadd(INDEX, {letter.id: letter.at})
            pipe.execute()
        if report:
            with sentry_sdk.new_scope() as scope:  # one report per final failure, none per retry
                scope.set_tag("task", letter.task)
                scope.set_context("dead_letter", {"id": letter.id, "event_id": letter.event_id,
                                                  "reason": letter.reason, "rule_id": letter.rule_id,
                                                  "status": (letter.response or {}).get("status")})
                sentry_sdk.capture_message(f"dead-lettered: {letter.reason}", level="error")
        return letter.id

    def get(self, letter_id: str) -> DeadLetter | None:
        raw = self.client.get(_key(letter_id))
        return DeadLetter(**json.loads(raw)) if raw else None

    def __iter__(self) -> Iterator[DeadLetter]:
        for letter_id in self.client.zrange(INDEX, 0, -1):
            letter = self.get(letter_id.decode())
            if letter is not None:
                yield letter

    def __len__(self) -> int:
        return int(self.client.zcard(INDEX))

    def remove(self, letter_id: str) -> None:
        """Gone from the list; a later replay of it finds it `replayed` for a day."""
        with self.client.pipeline() as pipe:
            pipe.delete(_key(letter_id))
            pipe.zrem(INDEX, letter_id)
            pipe.set(f"{_key(letter_id)}:replayed", 1, ex=REPLAYED_SECONDS)
            pipe.delete(f"{_key(letter_id)}:claim")
            pipe.execute()

    def claim(self, letter_id: str) -> bool:
        """One replay per letter: the first of two concurrent clicks gets it, the second does not."""
        return bool(self.client.set(f"{_key(letter_id)}:claim", 1, nx=True, ex=CLAIM_SECONDS))

    def release(self, letter_id: str) -> None:
        self.client.delete(f"{_key(letter_id)}:claim")

    def was_replayed(self, letter_id: str) -> bool:
        return bool(self.client.exists(f"{_key(letter_id)}:replayed", f"{_key(letter_id)}:claim"))
