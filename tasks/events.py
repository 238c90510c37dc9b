"""The event task: takes one delivery envelope and records that it ran."""
from __future__ import annotations

import json
import time
from typing import Any

from prepr_automation import store
from prepr_automation.settings import load_settings

from .celery_app import app


@app.task(name="tasks.process_event", bind=True)
def process_event(self, envelope: dict[str, Any]) -> str:
    settings = load_settings()
    client = store.redis_client(store.broker_url(settings))
    record = {"task_id": self.request.id, "started_at": time.time(), "outcome": "received",
              "redelivered": bool(self.request.delivery_info.get("redelivered"))}
    key = store.trace_key(str(envelope["id"]))
    client.hset(key, "worker", json.dumps(record))
    client.expire(key, settings.trace_ttl)
    return "received"
