"""A running service for worker tests: real Redis, real Celery worker processes, the sandbox."""
from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest
import redis
import requests

from prepr_automation import store
from tests.conftest import BIN, ROOT, Processes, Sandbox
from webhooks.intake import Intake

EDITOR = {"id": "editor-0000-4000-8000-000000000001"}
# A rule with an item change and a per-event effect: each event's marker tag, its own tracked event.
TRACK = """
version: 1
rules:
  - id: tag-and-track
    on: [content_item.changed]
    do:
      - add_tags: ["{{ event.payload.marker }}"]
      - track_event: {label: Seen, customer: "{{ event.id }}"}
"""
# The end-to-end tests of SPEC §8 run against a sandbox speaking each dialect alone, with PREPR_API
# unset (auto: the worker finds the dialect out with one call, kept in the store for a day).
BOTH_DIALECTS = pytest.mark.parametrize("dialect", ["publications", "content_items"], indirect=True)
# Each event's marker becomes a tag of its item: what a lost or doubled event would show.
TAG = """
version: 1
rules:
  - id: tag
    on: [content_item.changed]
    do:
      - add_tags: ["{{ event.payload.marker }}"]
"""
FINAL = ("done", "no change", "no rule matched", "dead-lettered", "skipped", "ignored", "dry run", "refused",
         "nothing matched")


class Service:
    def __init__(self, processes: Processes, redis_url: str, sandbox: Sandbox, tmp: Path,
                 dialect: str = "publications") -> None:
        self.processes, self.redis_url, self.sandbox, self.tmp = processes, redis_url, sandbox, tmp
        self.dialect = dialect
        self.items = f"/{dialect}"  # the item collection's path in this sandbox
        self.redis = redis.Redis.from_url(redis_url)
        self.intake = Intake(self.redis, 3600, 3600)
        self.rules_path = tmp / "rules.yaml"
        self.workers: list[subprocess.Popen] = []

    def rules(self, text: str) -> Path:
        self.rules_path.write_text(text)
        return self.rules_path

    def env(self, **extra: str) -> dict[str, str]:
        return {**self.sandbox.env, "CELERY_BROKER_URL": self.redis_url, "RULES_PATH": str(self.rules_path),
                "DATA_DIR": str(self.tmp / "var"), **extra}

    def start_worker(self, concurrency: int = 1, queues: str = "celery,bulk", pool: str = "prefork",
                     **extra: str) -> subprocess.Popen:
        proc = self.processes.start(
            [str(BIN / "celery"), "-A", "tasks", "worker", "-Q", queues, "-c", str(concurrency), "-P", pool,
             "--without-gossip", "--without-mingle", "--loglevel", "INFO", "-n", f"w{len(self.workers)}@%h"],
            self.env(**extra), f"worker-{len(self.workers)}")
        self.workers.append(proc)
        return proc

    def cli(self, *args: str, **extra: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(BIN / "prepr-automation"), *args], env={**os.environ, **self.env(**extra)},
                              capture_output=True, text=True, timeout=120, cwd=str(ROOT))

    def send(self, event: str, item_id: str, performed_by: Any = EDITOR, **payload: Any) -> str:
        """Queue one delivery exactly as the receiver does."""
        event_id = str(uuid.uuid4())
        envelope = {"id": event_id, "event": event, "created_on": int(time.time()),
                    "payload": {"id": item_id, **payload}}
        if performed_by is not None:
            envelope["performed_by"] = performed_by
        assert self.intake.accept(envelope, "queued") == "queued"
        return event_id

    def trace(self, event_id: str) -> dict[str, Any]:
        return store.read_trace(self.redis, event_id) or {}

    def wait(self, event_id: str, timeout: float = 60, field: str = "run") -> dict[str, Any]:
        """Until the event's run reached a final outcome; returns the whole trace."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            trace = self.trace(event_id)
            outcome = (trace.get(field) or {}).get("outcome", "")
            if outcome.startswith(FINAL):
                return trace
            for worker in self.workers:
                assert worker.poll() is None or worker.returncode in (-9, 0, -15), \
                    Path(worker.log_path).read_text()[-3000:]  # type: ignore[attr-defined]
            time.sleep(0.1)
        raise TimeoutError(f"event {event_id} unfinished: {json.dumps(self.trace(event_id))[:3000]}")

    def item(self, item_id: str) -> dict[str, Any]:
        return self.sandbox.client().get_item(item_id)

    def calls(self, method: str | None = None, path: str | None = None) -> list[dict]:
        """The sandbox's request log, less the worker's one dialect detection (once a day)."""
        return [r for r in self.sandbox.requests(method=method, path=path) if not _detection(r)]


def _detection(request: dict) -> bool:
    return request["path"] == "/content_items" and request.get("query") == "limit=1&fields=id"


def tag_names(item: dict[str, Any], locale: str = "en-GB") -> list[str]:
    tags = (((item.get("items") or {}).get(locale) or {}).get("tags") or {}).get("items") or []
    return [t.get("body") for t in tags]


def find_item(sandbox: Sandbox, text: str) -> dict[str, Any]:
    for item in sandbox.client().list_items():
        if text.lower() in json.dumps(item).lower():
            return item
    raise LookupError(text)


@pytest.fixture
def dialect(request: pytest.FixtureRequest) -> str:
    """The sandbox's dialect: `publications` unless a test is parametrized with BOTH_DIALECTS."""
    return getattr(request, "param", "publications")


@pytest.fixture
def service(processes: Processes, redis_url: str, sandbox_factory: Any, tmp_path: Path,
            dialect: str) -> Iterator[Service]:
    yield Service(processes, redis_url, sandbox_factory(api=dialect), tmp_path, dialect)


def http_ok(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).ok
    except requests.RequestException:
        return False
