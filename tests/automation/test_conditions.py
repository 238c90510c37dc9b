"""Operators on hand-made items and on the real Prepr deliveries (checked against plain Python)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from automation import evaluate, load_rules
from tests.conftest import read_deliveries

ITEM = {"id": "p1", "model": {"id": "m-1", "body": "Article"}, "status": "published", "locales": ["en-GB", "nl-NL"],
        "created_on": "2024-03-01T10:00:00+00:00", "publish_on": {"en-GB": 1709290800, "nl-NL": ""},
        "channels": [{"id": "c-web", "slug": "web", "name": "Website"}],
        "items": {"en-GB": {"title": {"body": "Crème brûlée at the <b>Café</b>"}, "duration": "210000",
                            "tags": {"items": [{"id": "t1", "body": "Food", "slug": "food"}]}},
                  "nl-NL": {"title": {"body": "Crème brûlée"}, "tags": None}}}

CASES = [
    ("model: {eq: article}", True), ("model: {eq: m-1}", True), ("model: {in: [News, Recipe]}", False),
    ("status: {neq: draft}", True), ("locales: {all: [en-GB, nl-NL]}", True), ("locales: {all: [de-DE]}", False),
    ("tags: {eq: food}", True), ("tags: [{eq: t1, param: id}]", True), ("tags: [{eq: food, param: id}]", False),
    ("tags: {has: true}", True), ("containers: {has: false}", True), ("channels: {in: [Website]}", True),
    ("title: {fz: CREME BRULEE}", True), ("title: {fz: cafe}", True), ("title: {fz: '<b>'}", False),
    ("title: {sw: creme}", True), ("title: {matches: '^Crème'}", True),
    ("created_on: {gt: '2024-02-29'}", True), ("created_on: {lt: 1709200000}", False),
    ("publish_on: {gte: '2024-03-01T11:00:00Z'}", True), ("publish_on: {lt: 1}", False),
    ("items.*.duration: {gt: 200000}", True), ("items.en-GB.duration: {eq: 210000}", True),
    ("items.*.title.body: {fz: brulee}", True), ("event.performed_by.id: {eq: u1}", True),
    ("event.performed_by: {eq: u1}", True), ("q: {fz: café}", True),
    ("any: [{model: {eq: News}}, {status: {eq: published}}]", True),
    ("not: {model: {eq: Article}}", False),
]


@pytest.mark.parametrize("condition,expected", CASES, ids=[c for c, _ in CASES])
def test_operator(condition: str, expected: bool, tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(f"version: 1\nrules:\n  - id: r\n    on: content_item.changed\n"
                                     f"    when: {{{condition}}}\n    do: [{{track_event: {{label: x, customer: c}}}}]\n")
    envelope = {"id": "e", "event": "content_item.changed", "performed_by": {"id": "u1"}, "payload": {"id": "p1"}}
    result = evaluate(load_rules(tmp_path), envelope, ITEM)
    tree = result.rules[0].condition
    assert tree["outcome"] is expected, json.dumps(tree)
    json.dumps(tree)


def test_changed_against_snapshot(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text("version: 1\nrules:\n  - id: r\n    on: content_item.changed\n"
                                     "    when: {title: {changed: true}}\n    do: [{add_tags: [edited]}]\n")
    ruleset = load_rules(tmp_path)
    envelope = {"id": "e", "event": "content_item.changed", "payload": {"id": "p1"}}
    first = evaluate(ruleset, envelope, ITEM)
    assert first.fired == ("r",)  # never seen: counts as changed
    same = evaluate(ruleset, envelope, ITEM, snapshot=first.snapshot)
    assert same.fired == ()
    edited = json.loads(json.dumps(ITEM))
    edited["items"]["nl-NL"]["title"]["body"] = "Crème brûlée!"
    assert evaluate(ruleset, envelope, edited, snapshot=first.snapshot).fired == ("r",)


RULES_ON_DELIVERIES = """\
version: 1
rules:
  - id: trackplay
    on: publication.*
    when: {label: {eq: TrackPlay}}
    do: [{track_event: {label: play, customer: x}}]
  - id: tagged
    on: content_item.*
    when: {tags: {has: true}}
    do: [{track_event: {label: tagged, customer: x}}]
  - id: recent-assets
    on: asset.*
    when: {created_on: {gte: "2022-02-07T00:00:00Z"}, body: {has: false}}
    do: [{track_event: {label: asset, customer: x}}]
  - id: long-tracks
    on: publication.created
    when: {duration: {gt: 240000}}
    do: [{track_event: {label: long, customer: x}}]
"""


def test_conditions_on_real_deliveries(tmp_path: Path) -> None:
    """Every real delivery evaluates without error, and each rule fires exactly where plain
    Python over the same payloads says it should."""
    import datetime as dt

    (tmp_path / "r.yaml").write_text(RULES_ON_DELIVERIES)
    ruleset = load_rules(tmp_path)
    cutoff = dt.datetime(2022, 2, 7, tzinfo=dt.timezone.utc).timestamp()
    got = {"trackplay": 0, "tagged": 0, "recent-assets": 0, "long-tracks": 0}
    want = dict(got)
    for raw in read_deliveries():
        envelope = json.loads(raw)
        p = envelope["payload"] if isinstance(envelope.get("payload"), dict) else {}
        result = evaluate(ruleset, envelope, now=0)
        assert not result.errors
        for rule_id in result.fired:
            got[rule_id] += 1
        family = envelope["event"].split(".")[0]
        want["trackplay"] += family == "publication" and p.get("label") == "TrackPlay"
        want["tagged"] += family == "publication" and bool(p.get("tags"))
        created = p.get("created_on")
        want["recent-assets"] += (family == "asset" and bool(created) and not p.get("body")
                                  and dt.datetime.fromisoformat(created).timestamp() >= cutoff)
        want["long-tracks"] += (envelope["event"] == "publication.created"
                                and str(p.get("duration") or "0").isdigit() and int(p.get("duration") or 0) > 240000)
    assert got == want
    assert all(want.values()), want  # each rule really is exercised by the data
