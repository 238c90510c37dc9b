"""Signed webhook deliveries, sent as Prepr sends them, from a background thread.

Envelope: `{id, created_on (int seconds), event, dc, payload (slim), performed_by: {id}}`,
signed with `Prepr-Signature` = hex HMAC-SHA256 of the raw body keyed with the secret (the
receiver's own `sign`). One sender thread keeps deliveries in order; a failed delivery (no
answer, 429 or 5xx) is retried with exponential backoff; the queue is bounded and a full queue
drops the new event (counted), so a dead receiver cannot exhaust the sandbox's memory.
"""
from __future__ import annotations

import collections
import json
import logging
import queue
import threading
import time
import uuid
from typing import Any

import requests

from webhooks.signature import sign

log = logging.getLogger("sandbox.webhooks")
BACKOFF = (0.2, 0.5, 1.0, 2.0, 4.0, 8.0)


class Emitter:
    def __init__(self, url: str | None = None, secret: str | None = None, *, maxsize: int = 10_000,
                 dc: str = "sandbox") -> None:
        self.url = url
        self.secret = secret
        self.dc = dc
        self.queue: queue.Queue[dict[str, Any]] = queue.Queue(maxsize=maxsize)
        self.deliveries: collections.deque[dict[str, Any]] = collections.deque(maxlen=5_000)
        self.dropped = 0
        self.session = requests.Session()
        self._thread = threading.Thread(target=self._run, name="sandbox-webhooks", daemon=True)
        self._thread.start()

    def configure(self, url: str | None, secret: str | None) -> None:
        self.url, self.secret = url, secret

    def emit(self, event: str, payload: dict[str, Any], performed_by: str) -> dict[str, Any] | None:
        """Queue one delivery; None when no receiver is configured or the queue is full."""
        if not self.url or not self.secret:
            return None
        envelope = {"id": str(uuid.uuid4()), "created_on": int(time.time()), "event": event, "dc": self.dc,
                    "payload": payload, "performed_by": {"id": performed_by}}
        try:
            self.queue.put_nowait({"envelope": envelope, "url": self.url, "secret": self.secret})
        except queue.Full:
            self.dropped += 1
            log.warning("webhook queue full; dropped %s for %s", event, payload.get("id"))
            return None
        return envelope

    def pending(self) -> int:
        return self.queue.unfinished_tasks

    def wait_idle(self, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while self.queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.02)
        return not self.queue.unfinished_tasks

    def _run(self) -> None:
        while True:
            job = self.queue.get()
            try:
                self._deliver(job)
            except Exception:  # the sender thread must survive anything
                log.exception("webhook delivery crashed")
            finally:
                self.queue.task_done()

    def _deliver(self, job: dict[str, Any]) -> None:
        envelope = job["envelope"]
        body = json.dumps(envelope, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", "User-Agent": "Prepr-Sandbox-Webhooks",
                   "Prepr-Signature": sign(body, job["secret"])}
        record = {"id": envelope["id"], "event": envelope["event"], "item": envelope["payload"].get("id"),
                  "status": None, "attempts": 0, "error": None}
        self.deliveries.append(record)
        for attempt, pause in enumerate((0.0, *BACKOFF), start=1):
            time.sleep(pause)
            record["attempts"] = attempt
            try:
                response = self.session.post(job["url"], data=body, headers=headers, timeout=(2, 10))
            except requests.RequestException as exc:
                record["error"] = type(exc).__name__
                continue
            record["status"] = response.status_code
            if response.status_code < 500 and response.status_code != 429:
                record["error"] = None if response.status_code < 400 else f"HTTP {response.status_code}"
                return
            record["error"] = f"HTTP {response.status_code}"
        log.warning("webhook %s for %s failed after %d attempts", envelope["event"], record["item"], record["attempts"])
