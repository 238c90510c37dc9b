"""SPEC §8 end to end: real Redis, real worker processes, the sandbox over HTTP; calls counted
in the sandbox's request log."""
from __future__ import annotations

import os
import signal
import time
from collections import Counter

from tests.tasks.conftest import BOTH_DIALECTS, EDITOR, FINAL, Service, find_item, tag_names

FOOTBALL = """
version: 1
rules:
  - id: football-sport
    on: [content_item.changed]
    when:
      q: {fz: football}
    do:
      - add_tags: [sport]
"""


def _football(service: Service) -> str:
    return find_item(service.sandbox, "Late winner")["id"]


@BOTH_DIALECTS
def test_one_get_one_put_then_none_when_nothing_changes(service: Service) -> None:
    service.rules(FOOTBALL)
    service.start_worker()
    item_id = _football(service)
    service.sandbox.clear_requests()

    first = service.wait(service.send("content_item.changed", item_id))
    assert first["run"]["outcome"] == "done: 1 call(s) sent"
    assert Counter(c["method"] for c in service.calls()) == {"GET": 1, "PUT": 1}
    assert tag_names(service.item(item_id)).count("sport") == 1

    service.sandbox.clear_requests()
    second_id = service.send("content_item.changed", item_id)
    second = service.wait(second_id)
    assert second["run"]["outcome"] == "no change"
    assert Counter(c["method"] for c in service.calls()) == {"GET": 1}
    log = service.workers[0].log_path.read_text()  # type: ignore[attr-defined]
    assert f"event {second_id} content_item.changed publication {item_id}: no change (" in log
    assert "succeeded" not in log, "one line per event: Celery's success line would repeat ours"


def test_a_changed_condition_decided_on_the_payload_skips_the_get_once_seen(service: Service) -> None:
    service.rules("""
version: 1
rules:
  - id: on-status
    on: [content_item.changed]
    when:
      status: {changed: true}
    do:
      - add_tags: [reviewed]
""")
    service.start_worker()
    item_id = _football(service)
    status = service.item(item_id)["status"]
    service.sandbox.clear_requests()
    assert service.wait(service.send("content_item.changed", item_id, status=status))["run"]["outcome"].startswith("done")
    assert Counter(c["method"] for c in service.calls()) == {"GET": 1, "PUT": 1}
    service.sandbox.clear_requests()  # same status again: decided on the payload and the snapshot, no GET
    assert service.wait(service.send("content_item.changed", item_id, status=status))["run"]["outcome"] == "no rule matched"
    assert service.calls() == []


@BOTH_DIALECTS
def test_own_events_make_no_call(service: Service) -> None:
    service.rules(FOOTBALL)
    service.start_worker()
    item_id = _football(service)
    service.sandbox.clear_requests()
    for performer in ({"id": service.sandbox.user_id}, service.sandbox.user_id):
        trace = service.wait(service.send("content_item.changed", item_id, performed_by=performer))
        assert trace["run"]["outcome"] == "skipped: performed by the automation"
    assert service.calls() == []


@BOTH_DIALECTS
def test_concurrent_events_on_one_item_lose_no_update(service: Service) -> None:
    service.rules("""
version: 1
rules:
  - id: mark
    on: [content_item.changed]
    do:
      - add_tags: ["{{ event.payload.marker }}"]
""")
    service.start_worker(concurrency=2, LOOP_MAX_WRITES="20")  # ten legitimate writes: not a loop
    service.start_worker(concurrency=2, LOOP_MAX_WRITES="20")
    item_id = _football(service)
    events = [service.send("content_item.changed", item_id, marker=f"marker-{n}") for n in range(10)]
    for event_id in events:
        assert service.wait(event_id)["run"]["outcome"].startswith("done")
    tags = tag_names(service.item(item_id))
    assert {f"marker-{n}" for n in range(10)} <= set(tags)


def test_worker_killed_mid_event_completes_after_restart_once(service: Service) -> None:
    service.rules(FOOTBALL)
    worker = service.start_worker(VISIBILITY_TIMEOUT="4")
    item_id = _football(service)
    service.sandbox.fault(f"/publications/{item_id}", method="GET", latency_ms=3000, times=1)
    event_id = service.send("content_item.changed", item_id)
    deadline = time.monotonic() + 20
    while not service.redis.exists(f"pa:lock:publication:{item_id}"):  # the worker is inside the event
        assert time.monotonic() < deadline, "the worker never started the event"
        time.sleep(0.05)
    time.sleep(0.3)
    os.killpg(worker.pid, signal.SIGKILL)  # mid-event: its GET is still waiting on the slow sandbox
    worker.wait(10)
    assert not service.trace(event_id).get("run", {}).get("outcome", "").startswith(FINAL)

    service.start_worker(VISIBILITY_TIMEOUT="4")
    trace = service.wait(event_id, timeout=60)
    assert trace["run"]["outcome"] in ("done: 1 call(s) sent", "no change")
    assert trace["run"]["redelivered"] is True
    assert tag_names(service.item(item_id)).count("sport") == 1
    assert len(service.calls(method="PUT")) == 1


@BOTH_DIALECTS
def test_rate_limited_storm_stays_under_the_limit_and_ends_correct(service: Service) -> None:
    service.rules(FOOTBALL.replace("q: {fz: football}", "model: {in: [Article, News]}"))
    items = [i["id"] for i in service.sandbox.client().list_items(
        filter={"model": {"in": ["Article", "News"]}})][:12]
    service.sandbox.fault(f"{service.items}/*", method="PUT", status=429, retry_after=1, times=6)
    for _ in range(4):
        service.start_worker(PREPR_RATE_LIMIT="8")
    service.sandbox.clear_requests()
    events = [service.send("content_item.changed", item_id) for item_id in items]
    for event_id in events:
        assert service.wait(event_id, timeout=120)["run"]["outcome"].startswith(("done", "no change"))
    calls = service.calls()  # the workers' calls only: read before the checks below add theirs
    for item_id in items:
        item = service.item(item_id)
        assert "sport" in [t for loc in item["items"] for t in tag_names(item, loc)]
    stamps = sorted(c["timestamp"] for c in calls)
    busiest = max(sum(1 for t in stamps if s <= t < s + 1.0) for s in stamps)
    assert busiest <= 8 + 1, busiest  # one call of tolerance for clock granularity at the edges
    assert sum(1 for c in calls if c["status"] == 429) == 6


@BOTH_DIALECTS
def test_persistent_500_dead_letters_then_replay_completes(service: Service) -> None:
    service.rules(FOOTBALL)
    service.start_worker(TASK_MAX_RETRIES="2")
    item_id = _football(service)
    service.sandbox.fault(f"{service.items}/{item_id}", method="PUT", status=500, times=None)
    event_id = service.send("content_item.changed", item_id)
    trace = service.wait(event_id, timeout=60)
    assert trace["run"]["outcome"].startswith("dead-lettered: retries exhausted")
    assert len(service.calls(method="PUT")) == 3  # first try + 2 retries

    listed = service.cli("dead-letters", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    letter = __import__("json").loads(listed.stdout.splitlines()[0])
    assert letter["event_id"] == event_id and letter["rule_id"] == "football-sport"
    assert letter["request"] == {"method": "PUT", "path": f"{service.items}/{item_id}"}
    assert letter["response"]["status"] == 500 and letter["attempts"] == 3
    assert service.sandbox.token not in listed.stdout

    service.sandbox.clear_faults()
    replayed = service.cli("dead-letters", "replay")
    assert replayed.returncode == 0 and letter["id"] in replayed.stdout
    deadline = time.monotonic() + 30
    while "sport" not in tag_names(service.item(item_id)):
        assert time.monotonic() < deadline, "replay did not complete"
        time.sleep(0.1)
    assert service.wait(event_id)["run"]["replay_of"] == letter["id"]
    assert service.cli("dead-letters", "list").stdout.strip().endswith("0 dead letter(s)")


@BOTH_DIALECTS
def test_client_error_is_not_retried(service: Service) -> None:
    service.rules(FOOTBALL)
    service.start_worker()
    item_id = _football(service)
    service.sandbox.fault(f"{service.items}/{item_id}", method="PUT", status=422, times=None)
    trace = service.wait(service.send("content_item.changed", item_id))
    assert trace["run"]["outcome"].startswith("dead-lettered: request refused")
    assert len(service.calls(method="PUT")) == 1


def test_loop_breaker_trips_on_a_rule_that_keeps_changing_an_item(service: Service) -> None:
    service.rules("""
version: 1
rules:
  - id: restless
    on: [content_item.changed]
    do:
      - update:
          items:
            en-GB:
              intro: {body: "seen by {{ event.id }}"}
""")
    service.start_worker(LOOP_MAX_WRITES="5")
    item_id = _football(service)
    outcomes = [service.wait(service.send("content_item.changed", item_id))["run"]["outcome"] for _ in range(7)]
    assert outcomes[:5] == ["done: 1 call(s) sent"] * 5
    assert all(o.startswith("dead-lettered: loop suspected") for o in outcomes[5:])
    assert len(service.calls(method="PUT")) == 5
    letters = service.cli("dead-letters", "list").stdout
    assert "loop suspected" in letters and "restless" in letters


def test_dry_run_plans_and_traces_but_writes_nothing(service: Service) -> None:
    service.rules(FOOTBALL)
    service.start_worker(DRY_RUN="1")
    item_id = _football(service)
    trace = service.wait(service.send("content_item.changed", item_id))
    assert trace["run"]["outcome"] == "dry run: 1 call(s) planned, none sent"
    assert trace["run"]["planned"][0]["method"] == "PUT"
    assert service.calls(method="PUT") == []


def test_trace_command_shows_the_run(service: Service) -> None:
    service.rules(FOOTBALL)
    service.start_worker()
    event_id = service.send("content_item.changed", _football(service), performed_by=EDITOR)
    service.wait(event_id)
    shown = service.cli("trace", event_id, "--json")
    assert shown.returncode == 0
    trace = __import__("json").loads(shown.stdout)
    assert trace["run"]["evaluation"]["rules"][0]["rule_id"] == "football-sport"
    assert [c["method"] for c in trace["run"]["calls"]] == ["GET", "PUT"]
    assert service.sandbox.token not in shown.stdout
    text = service.cli("trace", event_id).stdout
    assert "rule football-sport fired" in text and "✓ q fz \"football\"" in text
    assert "sent PUT /publications/" in text and "outcome: done: 1 call(s) sent" in text


def test_a_broken_rule_edit_never_stops_a_running_worker(service: Service) -> None:
    service.rules(FOOTBALL)
    worker = service.start_worker()
    item_id = _football(service)
    assert service.wait(service.send("content_item.changed", item_id))["run"]["outcome"].startswith("done")

    service.rules(FOOTBALL + "  - id: broken\n    on: [content_item.changed]\n    do: [{no_such_action: 1}]\n")
    time.sleep(5.5)  # past the reload interval: the worker sees the edit, rejects it, keeps the old set
    tags_before = tag_names(service.item(item_id))
    trace = service.wait(service.send("content_item.changed", item_id))
    assert trace["run"]["outcome"] == "no change"
    assert [r["rule_id"] for r in trace["run"]["evaluation"]["rules"]] == ["football-sport"]
    assert worker.poll() is None and tag_names(service.item(item_id)) == tags_before
    assert "not loaded" in open(worker.log_path).read()  # type: ignore[attr-defined]


def test_an_unexpected_answer_dead_letters_the_event_instead_of_losing_it(service: Service) -> None:
    service.rules(FOOTBALL)
    worker = service.start_worker(TASK_MAX_RETRIES="1")
    item_id = _football(service)
    service.sandbox.fault(f"/publications/{item_id}", method="GET", status=200, body=["not", "an", "item"],
                          times=2)
    trace = service.wait(service.send("content_item.changed", item_id))
    assert trace["run"]["outcome"].startswith("dead-lettered: retries exhausted")
    assert trace["run"]["error"]["message"] == "unexpected answer: not a resource object"
    assert worker.poll() is None
    letters = service.cli("dead-letters", "list", "--json").stdout.splitlines()
    assert len(letters) == 1
    replay = service.cli("dead-letters", "replay")  # the answer is sane again: replay completes it
    assert replay.returncode == 0
    deadline = time.monotonic() + 30
    while "sport" not in tag_names(service.item(item_id)):
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_explain_fetch_reads_the_item_and_never_writes(service: Service, tmp_path) -> None:
    item_id = _football(service)
    event = tmp_path / "event.json"
    event.write_text(__import__("json").dumps({"id": "e1", "event": "content_item.changed", "payload": {"id": item_id}}))
    service.rules(FOOTBALL)
    service.sandbox.clear_requests()
    result = service.cli("explain", str(event), "--rules", str(service.rules_path), "--fetch", "--json")
    assert result.returncode == 0, result.stderr
    explained = __import__("json").loads(result.stdout)
    assert [(c["method"], c["path"]) for c in explained["evaluation"]["plan"]] == [("PUT", f"/publications/{item_id}")]
    assert {c["method"] for c in service.calls()} == {"GET"}  # read the item, wrote nothing
    assert "sport" not in tag_names(service.item(item_id))
