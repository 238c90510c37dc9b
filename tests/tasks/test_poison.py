"""No poison message: whatever the door accepted, the worker survives it, dead-letters what it
cannot process with a reason, and goes on with the next event."""
from __future__ import annotations

import json

import pytest

from tests.tasks.conftest import Service, find_item, tag_names
from tests.tasks.test_worker import FOOTBALL


def _nested(depth: int) -> dict:
    value: dict = {"leaf": True}
    for _ in range(depth):
        value = {"n": value}
    return value


@pytest.mark.parametrize("pool", ["prefork", "threads"])
def test_a_deeply_nested_payload_is_dead_lettered_and_the_worker_goes_on(service: Service, pool: str) -> None:
    service.rules(FOOTBALL)
    worker = service.start_worker(concurrency=2, pool=pool)
    item_id = find_item(service.sandbox, "Late winner")["id"]
    poison = service.send("content_item.changed", item_id, deep=_nested(900))
    fine = service.send("content_item.changed", item_id, deep="shallow")

    trace = service.wait(poison, timeout=60)["run"]
    assert trace["outcome"].startswith("dead-lettered: cannot process"), trace
    assert service.wait(fine, timeout=60)["run"]["outcome"].startswith("done")
    assert worker.poll() is None
    assert "sport" in tag_names(service.item(item_id))
    letters = [json.loads(line) for line in service.cli("dead-letters", "list", "--json").stdout.splitlines()]
    assert [(l["event_id"], l["reason"].startswith("cannot process")) for l in letters] == [(poison, True)]
