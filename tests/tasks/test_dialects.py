"""Today's Prepr (content_items) end to end: nothing a rule did not change is lost in a write, what the
dialect lacks is a clear dead letter, persons are customers; and the dialect is found out once."""
from __future__ import annotations

import copy
import json
from collections import Counter
from typing import Any

import pytest

from tests.tasks.conftest import BOTH_DIALECTS, Service

TODAY = pytest.mark.parametrize("dialect", ["content_items"], indirect=True)

TWO_LOCALES = {
    "model": {"body": "Article"}, "locales": ["en-GB", "nl-NL"], "status": "draft",
    "items": {
        "en-GB": {"title": {"body": "Late winner at the derby"}, "intro": {"body": "A header in the 90th minute"},
                  "tags": {"items": [{"body": "news"}]}, "minutes": 90, "featured": True,
                  "location": {"latitude": 52.37, "longitude": 4.89}},
        "nl-NL": {"title": {"body": "Late winnaar in de derby"}, "intro": {"body": "Een kopbal in de 90e minuut"},
                  "tags": {"items": [{"body": "nieuws"}]}, "minutes": 90},
    },
}
UPDATE_ONE_LOCALE = """
version: 1
rules:
  - id: dutch-summary
    on: [content_item.changed]
    do:
      - update: {items: {nl-NL: {intro: {body: "Bijgewerkt"}}}}
"""
TAG_EVERY_LOCALE = """
version: 1
rules:
  - id: derby
    on: [content_item.changed]
    when:
      q: {fz: derby}
    do:
      - add_tags: [sport]
"""


def _content(item: dict[str, Any]) -> dict[str, Any]:
    """An item's content without what Prepr recomputes on every write."""
    item = copy.deepcopy(item)
    for key in ("changed_on", "last_published_on"):
        item.pop(key, None)
    return item


def _created(service: Service) -> tuple[str, dict[str, Any]]:
    item_id = service.sandbox.client().create_item(TWO_LOCALES)["id"]
    return item_id, service.item(item_id)


@TODAY
def test_a_write_to_one_locale_keeps_every_other_field_and_the_other_locale(service: Service) -> None:
    service.rules(UPDATE_ONE_LOCALE)
    service.start_worker()
    item_id, before = _created(service)
    service.sandbox.clear_requests()
    trace = service.wait(service.send("content_item.changed", item_id))
    assert trace["run"]["outcome"] == "done: 1 call(s) sent"
    assert Counter(c["method"] for c in service.calls()) == {"GET": 1, "PUT": 1}
    put = next(e for e in trace["run"]["planned"] if e["kind"] == "put")
    assert put["path"] == f"/content_items/{item_id}" and put["locales_sent"] == ["nl-NL"]
    after = service.item(item_id)
    assert after["items"]["nl-NL"]["intro"]["body"] == "Bijgewerkt"
    expected = _content(before)
    expected["items"]["nl-NL"]["intro"] = _content(after)["items"]["nl-NL"]["intro"]
    assert _content(after) == expected  # en-GB byte for byte, and every other field of nl-NL


@TODAY
def test_tags_in_every_locale_keep_each_locales_other_fields(service: Service) -> None:
    service.rules(TAG_EVERY_LOCALE)
    service.start_worker()
    item_id, before = _created(service)
    service.sandbox.clear_requests()
    assert service.wait(service.send("content_item.changed", item_id))["run"]["outcome"] == "done: 1 call(s) sent"
    after = service.item(item_id)
    for locale in ("en-GB", "nl-NL"):
        old, new = _content(before)["items"][locale], _content(after)["items"][locale]
        assert [t["body"] for t in new["tags"]["items"]] == [t["body"] for t in old["tags"]["items"]] + ["sport"]
        assert {k: v for k, v in new.items() if k != "tags"} == {k: v for k, v in old.items() if k != "tags"}
    service.sandbox.clear_requests()  # the same event again: the tag is there, nothing to write
    assert service.wait(service.send("content_item.changed", item_id))["run"]["outcome"] == "no change"
    assert Counter(c["method"] for c in service.calls()) == {"GET": 1}


@TODAY
def test_trigger_webhooks_is_a_dead_letter_that_names_the_dialect(service: Service) -> None:
    service.rules("""
version: 1
rules:
  - id: resend
    on: [content_item.published]
    do:
      - trigger_webhooks: {filter: {model: {eq: Recipe}}, event: content_item.changed}
""")
    service.start_worker()
    item_id, _ = _created(service)
    event_id = service.send("content_item.published", item_id)
    bulk = service.wait(event_id, field="bulk:trigger_webhooks:resend")["bulk:trigger_webhooks:resend"]
    assert bulk["outcome"].startswith("dead-lettered: unsupported: trigger_webhooks")
    letters = [json.loads(line) for line in service.cli("dead-letters", "list", "--json").stdout.splitlines()]
    assert len(letters) == 1 and "content_items dialect" in letters[0]["reason"]
    assert "PREPR_API=content_items" in letters[0]["reason"]
    assert not service.calls(path="/publications/*")


@TODAY
def test_channels_in_an_environment_without_any_are_a_clear_rule_error(service: Service) -> None:
    service.rules("""
version: 1
rules:
  - id: web
    on: [content_item.changed]
    do:
      - assign_channels: [web]
""")
    service.start_worker()
    service.sandbox.reset({"channels": [], "publications": [TWO_LOCALES]})
    item_id = next(service.sandbox.client().list_items(fields="id"))["id"]
    trace = service.wait(service.send("content_item.changed", item_id))
    rule = trace["run"]["evaluation"]["rules"][0]
    assert rule["status"] == "error" and "this Prepr environment has no channels" in rule["errors"][0]
    assert not service.calls(method="PUT")


@TODAY
def test_person_rules_read_the_customer_from_the_customers_api(service: Service) -> None:
    service.rules("""
version: 1
rules:
  - id: vip
    on: [person.changed]
    when:
      email: {sw: "vip"}
    do:
      - track_event: {label: VIP, customer: "{{ item.id }}"}
""")
    service.start_worker()
    target = _customers(service)[0]
    service.sandbox.clear_requests()
    trace = service.wait(service.send("person.changed", target["id"]))
    assert service.calls(path=f"/customers/{target['id']}") and not service.calls(path="/persons/*")
    assert trace["run"]["outcome"] in ("no rule matched", "done: 1 call(s) sent")


def _customers(service: Service) -> list[dict[str, Any]]:
    import requests

    answer = requests.get(f"{service.sandbox.url}/customers", timeout=10,
                          headers={"Authorization": f"Bearer {service.sandbox.token}"})
    answer.raise_for_status()
    return answer.json()["items"]


@BOTH_DIALECTS
def test_the_dialect_is_found_out_once_and_kept_a_day(service: Service) -> None:
    service.rules(TAG_EVERY_LOCALE)
    service.start_worker(concurrency=2)
    def detections() -> int:
        return sum(1 for r in service.sandbox.requests(path="/content_items") if r["query"] == "limit=1&fields=id")

    for event_id in [service.send("content_item.changed", f"nope-{n}") for n in range(3)]:
        service.wait(event_id)
    assert 1 <= detections() <= 2  # at most once per worker process (two asking at the same moment)
    keys = service.redis.keys("pa:dialect:*")
    assert len(keys) == 1 and service.redis.get(keys[0]).decode() == service.dialect
    assert 86000 < service.redis.ttl(keys[0]) <= 86400
    asked = detections()
    service.start_worker(concurrency=2)  # new processes: the store's answer, no question
    for event_id in [service.send("content_item.changed", f"again-{n}") for n in range(4)]:
        service.wait(event_id)
    assert detections() == asked
