"""Coalescing (SPEC §8) end to end: real Redis, real workers, the sandbox over HTTP; Prepr calls
counted in the sandbox's request log, tracked events in its tracking log."""
from __future__ import annotations

import json
import os
import signal
import time
from collections import Counter

import pytest

from tests.tasks.conftest import BOTH_DIALECTS, Service, find_item, tag_names

TWO_RULES = """
version: 1
rules:
  - id: on-change
    on: [content_item.changed]
    when:
      q: {fz: football}
    do:
      - add_tags: ["changed-{{ event.payload.marker }}"]
      - track_event: {label: Changed, customer: "{{ event.id }}"}
  - id: on-publish
    on: [content_item.published]
    do:
      - add_tags: [published]
      - track_event: {label: Published, customer: "{{ event.id }}"}
"""


def _item(service: Service) -> str:
    return find_item(service.sandbox, "Late winner")["id"]


def _tracked_customers(service: Service) -> Counter:
    return Counter(json.dumps(e["body"].get("customer"), sort_keys=True).strip('"') for e in service.sandbox.tracked_events())


def _burst(service: Service, item_id: str) -> list[str]:
    return [service.send("content_item.changed", item_id, marker="one"),
            service.send("content_item.published", item_id),
            service.send("content_item.changed", item_id, marker="two")]


def _burst_run(service: Service, window: str) -> tuple[str, list[str], list[dict]]:
    """(item, event ids, their runs) of a burst of three events under TWO_RULES."""
    service.rules(TWO_RULES)
    service.start_worker(concurrency=4, COALESCE_SECONDS=window)
    item_id = _item(service)
    service.sandbox.clear_requests()
    events = _burst(service, item_id)
    return item_id, events, [service.wait(e)["run"] for e in events]


@BOTH_DIALECTS
def test_a_burst_of_mixed_events_is_one_run_with_each_events_effects_once(service: Service) -> None:
    item_id, events, traces = _burst_run(service, "2")

    assert Counter(c["method"] for c in service.calls(path=f"{service.items}/{item_id}")) == {"GET": 1, "PUT": 1}
    assert {t["run_id"] for t in traces} == {traces[0]["run_id"]}
    assert all(t["merged"] == events for t in traces)  # in the order the receiver took them
    assert [t["event"] for t in traces] == ["content_item.changed", "content_item.published", "content_item.changed"]
    assert [[r["rule_id"] for r in t["evaluation"]["rules"]] for t in traces] == [["on-change"], ["on-publish"], ["on-change"]]
    assert all(t["outcome"] == "done: 2 call(s) sent" for t in traces)  # its share of the PUT + its track_event
    assert {"changed-one", "changed-two", "published"} <= set(tag_names(service.item(item_id)))
    assert _tracked_customers(service) == Counter(events)  # once per event, each with its own envelope


THROTTLE_AND_CHANGED = """
version: 1
rules:
  - id: status-moved
    on: [content_item.changed]
    when:
      status: {changed: true}
    do:
      - track_event: {label: "Status {{ event.payload.status }}", customer: "{{ event.id }}"}
  - id: once-an-hour
    on: [content_item.changed]
    throttle: {once_within: 1h}
    do:
      - track_event: {label: Hourly, customer: "{{ event.id }}"}
"""


@pytest.mark.parametrize("window", ["0", "2"])
def test_throttle_and_changed_decide_as_if_the_events_ran_one_by_one(service: Service, window: str) -> None:
    """Decided on each event's payload: `changed` compares with the event before, throttle
    counts the firing of an earlier event of the same run."""
    service.rules(THROTTLE_AND_CHANGED)
    service.start_worker(concurrency=1 if window == "0" else 4, COALESCE_SECONDS=window)
    item_id = _item(service)
    service.sandbox.clear_requests()
    events = []
    for status in ["draft", "draft", "published", "published", "draft"]:
        events.append(service.send("content_item.changed", item_id, status=status))
        time.sleep(0.3)  # well within the window
    traces = [service.wait(e)["run"] for e in events]

    fired = [[r["rule_id"] for r in t["evaluation"]["rules"] if r["status"] == "fired"] for t in traces]
    assert fired == [["status-moved", "once-an-hour"], [], ["status-moved"], [], ["status-moved"]]
    assert [r["status"] for r in traces[1]["evaluation"]["rules"]] == ["not_matched", "throttled"]
    labels = [e["body"]["label"] for e in service.sandbox.tracked_events()]
    assert Counter(labels) == {"Status draft": 2, "Status published": 1, "Hourly": 1}
    assert service.calls(path=f"/publications/{item_id}") == []  # decided on the payloads
    if window == "0":
        assert len({t["run_id"] for t in traces}) == 5 and not any("merged" in t for t in traces)
    else:
        assert len({t["run_id"] for t in traces}) == 1 and traces[0]["merged"] == events


def test_the_off_switch_runs_each_event_alone(service: Service) -> None:
    item_id, events, traces = _burst_run(service, "0")
    assert len({t["run_id"] for t in traces}) == 3 and not any("merged" in t for t in traces)
    assert Counter(c["method"] for c in service.calls(path=f"/publications/{item_id}")) == {"GET": 3, "PUT": 3}
    assert _tracked_customers(service) == Counter(events)
    assert not service.redis.keys("pa:pending*")


def test_a_worker_killed_mid_window_loses_no_merged_event(service: Service) -> None:
    service.rules(TWO_RULES)
    worker = service.start_worker(concurrency=4, COALESCE_SECONDS="6", VISIBILITY_TIMEOUT="4")
    item_id = _item(service)
    service.sandbox.clear_requests()
    events = _burst(service, item_id)
    deadline = time.monotonic() + 20
    while sum("merged into run" in (service.trace(e).get("run") or {}).get("outcome", "") for e in events) < 3:
        assert time.monotonic() < deadline, [service.trace(e) for e in events]
        time.sleep(0.05)
    leader_run = service.trace(events[0])["run"]["outcome"].split()[3]  # "merged into run <id> ..."
    os.killpg(worker.pid, signal.SIGKILL)  # mid-window: the followers were acknowledged, the run is not due yet
    worker.wait(10)
    assert service.calls(method="PUT") == [] and service.sandbox.tracked_events() == []
    assert service.redis.zcard(f"pa:pending:publication:{item_id}") == 3

    service.start_worker(concurrency=4, COALESCE_SECONDS="6", VISIBILITY_TIMEOUT="4")
    traces = [service.wait(e, timeout=90)["run"] for e in events]
    assert all(t["outcome"].startswith("done") for t in traces)
    assert {t["run_id"] for t in traces} == {leader_run}  # the run the followers were told of
    assert len(service.calls(method="PUT")) == 1
    assert {"changed-one", "changed-two", "published"} <= set(tag_names(service.item(item_id)))
    assert _tracked_customers(service) == Counter(events)
    assert service.redis.zcard(f"pa:pending:publication:{item_id}") == 0


def test_a_burst_past_the_budget_of_one_window_runs_at_once_and_each_item_once(service: Service) -> None:
    """1/second and a 5 s window: the budget serves 2 items (a GET and a PUT each) within one window,
    so of 5 items arriving together 2 wait out their window and 3 run at once (tasks.coalesce).
    The window is long enough that the five deliveries arrive within it on a loaded machine too."""
    service.rules(TWO_RULES)
    worker = service.start_worker(concurrency=8, pool="threads", COALESCE_SECONDS="5", PREPR_RATE_LIMIT="1/second")
    items = [i["id"] for i in service.sandbox.client().list_items(limit=5)]
    assert len(items) == 5
    service.sandbox.clear_requests()
    events = [service.send("content_item.published", item) for item in items]
    traces = [service.wait(e, timeout=60)["run"] for e in events]

    assert all(t["outcome"].startswith("done") for t in traces)
    leads = [line for line in worker.log_path.read_text().splitlines() if "which it leads" in line]
    assert len(leads) == 5
    assert sum("a burst: at once" in line for line in leads) == 3
    assert (len(service.calls(method="GET")), len(service.calls(method="PUT"))) == (5, 5)
    assert service.redis.zcard("pa:coalesce:waiting") == 0
