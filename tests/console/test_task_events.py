"""Workers send task events by default (as `celery worker -E`), so Flower and `celery events` see tasks."""
from __future__ import annotations

import threading
import uuid

from celery import Celery

from prepr_automation import store

from .conftest import Console


def test_the_worker_sends_task_events(console: Console) -> None:
    seen: list[dict] = []
    errors: list[BaseException] = []
    listening = threading.Event()
    app = Celery(broker=console.redis_url)

    def listen() -> None:
        try:
            with app.connection() as conn:
                def on_event(event: dict) -> None:
                    seen.append(event)
                    receiver.should_stop = event["type"] == "task-succeeded"

                receiver = app.events.Receiver(conn, handlers={"*": on_event})
                listening.set()
                receiver.capture(limit=None, timeout=60, wakeup=False)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
            listening.set()

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    assert listening.wait(10)
    from webhooks.intake import Intake

    client = store.redis_client(console.redis_url)
    event_id = str(uuid.uuid4())
    Intake(client, 600, 600).accept({"id": event_id, "event": "asset.created", "payload": {"id": "a1"}}, enqueue=True)
    thread.join(60)
    assert not errors, errors
    succeeded = [e for e in seen if e["type"] == "task-succeeded"]
    assert succeeded and succeeded[0]["hostname"].startswith("console-test@"), [e["type"] for e in seen]
