"""Event names, globs, the content_item/publication aliases and the index."""
from __future__ import annotations

from pathlib import Path

from automation import load_rules

RULES = """\
version: 1
rules:
  - {id: a, on: publication.changed, do: [{add_tags: [a]}]}
  - {id: b, on: "content_item.*", do: [{add_tags: [b]}]}
  - {id: c, on: ["asset.*", person.subscribed], do: [{add_tags: [c]}]}
  - {id: d, on: "*.deleted", do: [{track_event: {label: gone, customer: x}}]}
  - {id: e, on: content_item.changed, disabled: "off", do: [{add_tags: [e]}]}
"""


def test_index(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(RULES)
    rs = load_rules(tmp_path)
    ids = lambda name: [r.id for r in rs.rules_for(name)]  # noqa: E731
    assert ids("content_item.changed") == ["a", "b"] == ids("publication.changed")
    assert ids("publication.published") == ["b"]
    assert ids("content_item.deleted") == ["b", "d"]
    assert ids("asset.deleted") == ["c", "d"]
    assert ids("person.subscribed") == ["c"]
    assert ids("person.liked") == []
    assert not rs.listens_to("container.changed") and rs.listens_to("asset.uploaded")
    assert rs.summary() == {"files": 1, "rules": 5, "enabled": 4}


TODAYS_FAMILIES = ["asset.uploaded", "storage_file.deleted", "cdn_file.deleted", "schema.changed",
                   "segment.created", "segment.changed", "segment.deleted", "person.segment.added",
                   "person.segment.removed", "tag.created", "tag.changed", "tag.deleted"]


def test_every_family_todays_webhooks_send_can_be_listened_to(tmp_path: Path) -> None:
    from automation import evaluate

    (tmp_path / "r.yaml").write_text("version: 1\nrules:\n  - id: seen\n    on: [" + ", ".join(TODAYS_FAMILIES)
                                     + "]\n    when: {label: {neq: nothing}}\n"
                                     "    do: [{track_event: {label: '{{ event.event }}', customer: x}}]\n")
    rs = load_rules(tmp_path)
    for name in TODAYS_FAMILIES:
        envelope = {"id": "e1", "event": name, "payload": {"id": "x1", "label": "Tag"}}
        assert [r.id for r in rs.rules_for(name)] == ["seen"], name
        if not name.startswith(("asset.", "person.")):  # no fetchable resource: the payload alone
            assert rs.fetch_plan(envelope) is None, name
        result = evaluate(rs, envelope)
        assert [c.kind for c in result.plan] == ["track_event"] and result.plan[0].body["label"] == name


def test_per_item_actions_need_a_resource_that_can_be_written(tmp_path: Path) -> None:
    from automation import RuleSetError

    (tmp_path / "r.yaml").write_text("version: 1\nrules:\n  - {id: t, on: tag.created, do: [{add_tags: [x]}]}\n")
    try:
        load_rules(tmp_path)
    except RuleSetError as exc:
        assert [e.message for e in exc.errors] == ["add_tags cannot apply to tag events"]
    else:
        raise AssertionError("add_tags on tag.created was accepted")
