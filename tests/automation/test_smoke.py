"""End-to-end through the public API: load a rule file, plan one event, apply, plan again."""
from __future__ import annotations

from pathlib import Path

from automation import apply_put, evaluate, load_rules

RULE = """\
version: 1
rules:
  - id: tag-football
    on: [content_item.changed]
    when:
      title: {fz: football}
    do:
      - add_tags: [sport]
      - assign_channels: [web]
"""
ITEM = {"id": "p1", "locales": ["en-GB"], "channels": {"items": []},
        "items": {"en-GB": {"title": {"body": "Fóotball news"}, "tags": {"items": []}}}}
CHANNELS = [{"id": "c-web", "slug": "web", "name": "Web"}]


def test_plan_then_replan_is_empty(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(RULE)
    ruleset = load_rules(tmp_path)
    envelope = {"id": "e1", "event": "publication.changed", "payload": {"id": "p1"}}
    assert ruleset.fetch_plan(envelope).fields == ("channels", "items", "locales")
    first = evaluate(ruleset, envelope, ITEM, channels=CHANNELS)
    assert [c.kind for c in first.plan] == ["put"]
    assert first.plan[0].body == {"items": {"en-GB": {"tags": {"items": [{"body": "sport"}]}}},
                                  "channels": [{"id": "c-web"}]}
    again = evaluate(ruleset, envelope, apply_put(ITEM, first.plan[0].body), channels=CHANNELS)
    assert again.plan == ()
    assert again.fired == ("tag-football",)
