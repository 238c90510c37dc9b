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
