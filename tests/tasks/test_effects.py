"""Per-event effects once (issue: outages and redeliveries): a message delivered again, or a
replay of an event whose effects were sent, sends nothing twice unless a person asks `again`."""
from __future__ import annotations

import os
import signal
import time
import uuid
from collections import Counter

import pytest
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


def test_tracking_in_flight_when_the_worker_is_killed_is_never_sent_twice_and_shows_unknown(
        service: Service, monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker SIGKILLed while tracking POSTs wait in the sandbox's latency: the events run
    again elsewhere, no tracked event arrives twice, those in flight show `unknown`, and asking
    for one (the console's Send once) sends it once, a second ask finding it asked."""
    for name, value in service.env().items():  # this process asks as the console does, on the same broker
        monkeypatch.setenv(name, value)
    from tasks.effects import ask

    service.rules(TRACK)
    env = {"COALESCE_SECONDS": "0", "VISIBILITY_TIMEOUT": "300"}
    worker = service.start_worker(concurrency=4, **env)
    items = [i["id"] for i in service.sandbox.client().list_items()][:8]
    service.sandbox.fault("/events", method="POST", latency_ms=3000, times=None)
    events = [service.send("content_item.changed", item, marker=f"t{n}") for n, item in enumerate(items)]
    deadline = time.monotonic() + 60
    while True:  # tracking calls marked in flight and not answered yet
        marks = [k for k in service.redis.keys("pa:effects:*")
                 if any(f.endswith(b"|inflight") for f in service.redis.hkeys(k))
                 and not any(not f.endswith((b"|inflight", b"|asked")) for f in service.redis.hkeys(k))]
        if len(marks) >= 3:
            break
        assert time.monotonic() < deadline, "no tracking call in flight"
        time.sleep(0.05)
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait(10)
    service.sandbox.clear_faults()
    service.start_worker(concurrency=4, **env)
    traces = {e: service.wait(e, timeout=120)["run"] for e in events}

    tracked = Counter(e["body"]["customer"] for e in service.sandbox.tracked_events())
    unknown = [e for e, t in traces.items() if any(p.get("unknown") for p in t["planned"])]
    print(f"\nSIGKILL with {len(marks)} tracking call(s) in flight: {len(events)} events; tracked {sum(tracked.values())}; "
          f"doubled {sum(n > 1 for n in tracked.values())}; unknown {len(unknown)}")
    assert all(n == 1 for n in tracked.values()), tracked  # at most once
    assert len(unknown) >= len(marks) and all("unknown" in traces[e]["outcome"] for e in unknown)
    assert all(t["outcome"].startswith(("done", "no change")) for t in traces.values())
    assert all(tracked[e] == 1 for e in events if e not in unknown)  # the others were sent, once

    event_id = unknown[0]
    key = next(p["effect_key"] for p in traces[event_id]["planned"] if p.get("unknown"))
    before = tracked[event_id]
    assert ask(service.redis, event_id, key, broker_url=service.redis_url)
    assert not ask(service.redis, event_id, key, broker_url=service.redis_url)  # a second click
    deadline = time.monotonic() + 60
    while "sent on request" not in service.trace(event_id)["run"]["outcome"]:
        assert time.monotonic() < deadline, service.trace(event_id)["run"]
        time.sleep(0.2)
    sent = Counter(e["body"]["customer"] for e in service.sandbox.tracked_events())
    assert sent[event_id] == before + 1 and sum(sent.values()) == sum(tracked.values()) + 1
    entry = next(p for p in service.trace(event_id)["run"]["planned"] if p.get("effect_key") == key)
    assert entry["sent"] is True and entry["unknown"] is False
