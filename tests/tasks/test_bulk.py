"""Bulk safety end to end: refused above max_items, backed up before the call, restored after."""
from __future__ import annotations

import json

import pytest

from tests.tasks.conftest import BOTH_DIALECTS, Service

RULES = """
version: 1
rules:
  - id: sweep
    on: [content_item.published]
    when:
      tags: {{in: [cleanup]}}
    do:
      - {action}:
          filter:
            tags: {{eq: old-stuff}}
{extra}          max_items: {max_items}
"""


def _create(service: Service, title: str, tags: list[str], status: str = "published") -> str:
    body = {"model": "Article", "status": status, "locales": ["en-GB"],
            "items": {"en-GB": {"title": {"body": title}, "tags": {"items": [{"body": t} for t in tags]}}}}
    return service.sandbox.client().create_item(body)["id"]


def _old_stuff(service: Service) -> dict[str, dict]:
    found = service.sandbox.client().list_items(filter={"tags": {"eq": "old-stuff"}})
    return {i["items"]["en-GB"]["title"]["body"]: i for i in found}


def _run(service: Service, action: str, max_items: int, extra: str = "") -> dict:
    service.rules(RULES.format(action=action, max_items=max_items, extra=extra))
    service.start_worker()
    trigger = _create(service, "Spring cleaning", ["cleanup"])
    service.sandbox.clear_requests()
    event_id = service.send("content_item.published", trigger)
    assert service.wait(event_id)["run"]["outcome"] == "done: 1 call(s) sent"
    return service.wait(event_id, field=f"bulk:{action}:sweep")


@BOTH_DIALECTS
def test_bulk_refused_above_max_items(service: Service) -> None:
    for n in range(4):
        _create(service, f"Old {n}", ["old-stuff"])
    trace = _run(service, "bulk_delete", max_items=3)
    bulk = trace["bulk:bulk_delete:sweep"]
    assert bulk["outcome"].startswith("refused: more than 3 items match")
    assert "backup_id" not in bulk
    assert not service.calls(method="POST", path="/publications/bulk/*")
    assert not service.calls(method="DELETE")
    assert len(_old_stuff(service)) == 4
    letters = [json.loads(line) for line in service.cli("dead-letters", "list", "--json").stdout.splitlines()]
    assert [(l["reason"], l["rule_id"]) for l in letters] == [("bulk refused: more than max_items (3) match", "sweep")]


@BOTH_DIALECTS
@pytest.mark.parametrize("action,extra", [
    ("bulk_delete", ""),
    ("bulk_put", "          set: {status: draft}\n"),
])
def test_bulk_then_restore_round_trip(service: Service, action: str, extra: str) -> None:
    for n in range(3):
        _create(service, f"Old {n}", ["old-stuff"])
    before = _old_stuff(service)
    bulk = _run(service, action, max_items=10, extra=extra)[f"bulk:{action}:sweep"]
    assert bulk["matched"] == 3
    if service.dialect == "publications":
        assert bulk["outcome"] == "done"
        assert [c["method"] for c in bulk["calls"]] == ["GET", "POST"]  # list (one page), then the one bulk call
    else:  # no bulk endpoint: the listing, then one call per item through the limiter
        assert bulk["outcome"] == "done: 3 item(s), one call each"
        one = "DELETE" if action == "bulk_delete" else "PUT"
        assert [c["method"] for c in bulk["calls"]] == ["GET", one, one, one]
        assert not service.calls(path="/publications/*")
    after_bulk = _old_stuff(service)
    if action == "bulk_delete":
        assert after_bulk == {}
    else:
        assert {i["status"] for i in after_bulk.values()} == {"draft"}

    restored = service.cli("restore", bulk["backup_id"])
    assert restored.returncode == 0, restored.stderr
    assert f"restored 3 item(s) from {bulk['backup_id']}" in restored.stdout
    after = _old_stuff(service)
    assert sorted(after) == sorted(before)
    for title, item in after.items():
        assert item["status"] == before[title]["status"] == "published"
        assert item["model"] == before[title]["model"]
        if action == "bulk_delete":
            assert item["id"] != before[title]["id"] and f"as {item['id']}" in restored.stdout
        else:
            assert item["id"] == before[title]["id"]


def test_restore_of_unknown_backup_is_a_clear_error(service: Service) -> None:
    result = service.cli("restore", "bk-nope")
    assert result.returncode == 1 and "no backup bk-nope" in result.stderr
