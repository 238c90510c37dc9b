"""Sending, once and on request, an at-most-once effect whose fate is unknown (tasks.execute).

A `track_event` in flight when its worker died is never resent on its own: the event's trace
shows it `unknown`, and the console's *Send once* button asks for it here. `ask` is the
click: it claims the effect (`<key>|asked` in the event's effect record) so a second click, or
a second tab, finds it already asked. The task sends the call its trace planned, records it as
sent and marks the trace's entry. It is at most once too: a redelivered message (its worker
died mid-call) does not send again, it gives the claim back so a person may ask again.
"""
from __future__ import annotations

import time
from typing import Any

import redis

from prepr.errors import PreprError

from . import deferred
from .celery_app import app
from .execute import effects_key
from .policy import STORE_ERRORS, requeue
from .runtime import runtime

ASKED = "|asked"


def ask(client: redis.Redis, event_id: str, key: str, broker_url: str | None = None) -> bool:
    """Queue the sending of one unknown effect; False when it was already asked for."""
    name = effects_key(event_id)
    if client.hexists(name, key) or not client.hsetnx(name, key + ASKED, f"{time.time():.3f}"):
        return False
    try:
        with app.connection_for_write(broker_url) as connection:
            app.send_task("tasks.send_effect", args=[event_id, key], connection=connection)
    except Exception:
        client.hdel(name, key + ASKED)  # not queued: the next click may ask again
        raise
    return True


def unknown_entry(run: dict[str, Any], key: str) -> dict[str, Any] | None:
    return next((e for e in run.get("planned") or [] if e.get("unknown") and e.get("effect_key") == key), None)


@app.task(name="tasks.send_effect", bind=True, max_retries=0)
def send_effect(self: Any, event_id: str, key: str) -> str:
    try:
        return _send(self, event_id, key)
    except STORE_ERRORS as exc:  # requeued: delivered again, it gives the claim back (see above)
        requeue(exc)


def _send(self: Any, event_id: str, key: str) -> str:
    rt = runtime()
    name = effects_key(event_id)
    trace = rt.traces.read(event_id) or {}
    run = trace.get("run") or {}
    entry = unknown_entry(run, key)
    if entry is None or rt.redis.hexists(name, key):
        return "nothing to send: the effect is not unknown any more"
    if (self.request.delivery_info or {}).get("redelivered"):
        rt.redis.hdel(name, key + ASKED)  # the attempt before may have sent it: a person decides again
        entry["note"] = "sending was interrupted; still unknown"
        rt.traces.write(event_id, "run", run)
        return entry["note"]
    base = rt.api.tracking_url if entry.get("api") == "tracking" else None
    try:
        rt.api.request(entry["method"], entry["path"], params=entry.get("params"), json=entry.get("body"),
                       base_url=base, expect_json=False)
    except PreprError as exc:
        rt.redis.hdel(name, key + ASKED)
        entry["note"] = f"sending on request failed: {exc}"[:300]
        rt.traces.write(event_id, "run", run)
        return entry["note"]
    at = f"{time.time():.3f}"
    deferred.send(rt.redis, lambda pipe: pipe.hset(name, key, at))  # sent: recorded even through an outage
    entry.update(unknown=False, sent=True, sent_on_request=round(time.time(), 3))
    entry.pop("note", None)
    run["outcome"] = f"{run.get('outcome', '')}; 1 unknown effect sent on request".lstrip("; ")
    rt.traces.write(event_id, "run", run)
    return "sent on request"
