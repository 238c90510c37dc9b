"""Per-event effects once (issue: outages and redeliveries): a message delivered again, or a
replay of an event whose effects were sent, sends nothing twice unless a person asks `again`."""
from __future__ import annotations

import time
import uuid

from celery import Celery

from tests.tasks.conftest import EDITOR, TRACK, Service, find_item, tag_names


def test_a_redelivered_event_sends_its_effects_once_and_a_replay_again_resends(service: Service) -> None:
    service.rules(TRACK)
    service.start_worker(COALESCE_SECONDS="0")
    item_id = find_item(service.sandbox, "Late winner")["id"]
    envelope = {"id": str(uuid.uuid4()), "event": "content_item.changed", "created_on": int(time.time()),
                "performed_by": EDITOR, "payload": {"id": item_id, "marker": "seen"}}
    assert service.intake.accept(envelope, "queued") == "queued"
    assert service.wait(envelope["id"])["run"]["outcome"] == "done: 2 call(s) sent"

    service.redis.delete(f"pa:seen:{envelope['id']}")  # the same message on the queue again
    service.redis.hdel(f"pa:trace:{envelope['id']}", "run")
    assert service.intake.accept(envelope, "queued") == "queued"
    again = service.wait(envelope["id"])["run"]
    assert again["outcome"] == "no change: 1 effect(s) already sent"
    assert again["planned"][0]["already_sent"] is True
    assert len(service.sandbox.tracked_events()) == 1 and len(service.calls(method="PUT")) == 1

    service.redis.hdel(f"pa:trace:{envelope['id']}", "run")
    Celery(broker=service.redis_url).send_task("tasks.process_event", args=[envelope],
                                               kwargs={"replay_of": "by hand", "again": True})
    replayed = service.wait(envelope["id"])["run"]
    assert replayed["replay_of"] == "by hand" and replayed["outcome"] == "done: 1 call(s) sent"
    assert len(service.sandbox.tracked_events()) == 2 and len(service.calls(method="PUT")) == 1
    assert tag_names(service.item(item_id)).count("seen") == 1
