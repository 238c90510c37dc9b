"""Hostile rules against a real worker (Celery, real Redis, the sandbox): a catastrophic regex and a
template bomb end as quick results of their rule, the worker goes on with other events at once,
and the trace stays small."""
from __future__ import annotations

import json
import time

from prepr_automation import store
from tests.tasks.conftest import Service, find_item, tag_names

HOSTILE = """
version: 1
rules:
  - id: redos
    on: [content_item.changed]
    when:
      event.payload.headline: {matches: "(a+)+$"}
    do:
      - add_tags: [never]
  - id: bomb
    on: [content_item.changed]
    when:
      event.payload.bomb: {eq: "yes"}
    do:
      - update: {label: "{{ 'x'|center(10**8) }}{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"}
  - id: football-sport
    on: [content_item.changed]
    when:
      q: {fz: football}
    do:
      - add_tags: [sport]
"""


def test_a_redos_rule_and_a_template_bomb_do_not_stall_the_worker(service: Service) -> None:
    service.rules(HOSTILE)
    worker = service.start_worker(concurrency=2, pool="threads", COALESCE_SECONDS="0")
    item_id = find_item(service.sandbox, "Late winner")["id"]
    started = time.monotonic()
    redos = [service.send("content_item.changed", item_id, headline="a" * size + "!") for size in (40, 100_000)]
    bomb = service.send("content_item.changed", item_id, bomb="yes")
    others = [service.send("content_item.changed", item_id, marker=str(n)) for n in range(4)]
    traces = {event_id: service.wait(event_id, timeout=60) for event_id in [*redos, bomb, *others]}
    took = time.monotonic() - started
    assert took < 30, f"{took:.1f} s for 7 events"  # the probe saw 0 of 4 others in 40 s
    assert worker.poll() is None
    for event_id in redos:
        rules = {r["rule_id"]: r for r in traces[event_id]["run"]["evaluation"]["rules"]}
        assert rules["redos"]["status"] == "not_matched", rules["redos"]
    bombed = {r["rule_id"]: r for r in traces[bomb]["run"]["evaluation"]["rules"]}["bomb"]
    assert bombed["status"] == "error" and "template output exceeds 102400 bytes" in bombed["errors"][0]
    assert all(traces[e]["run"]["outcome"].startswith(("done", "no change")) for e in others)
    assert "sport" in tag_names(service.item(item_id)) and "never" not in tag_names(service.item(item_id))
    stored = service.redis.hget(store.trace_key(bomb), "run")
    assert stored is not None and len(stored) < 20_000, len(stored or b"")
    assert len(json.dumps(traces[redos[1]])) < 300_000  # the 100 KB headline is kept once, in the envelope
