"""Property: the plan is a diff — applying the planned PUT and planning again plans nothing."""
from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings, strategies as st

from automation import apply_put, evaluate, load_rules

RULES = """\
version: 1
rules:
  - id: add
    on: content_item.changed
    do:
      - add_tags: [Sport, "{{ item.model.body | lower }}"]
      - assign_channels: [web, app]
  - id: remove
    on: content_item.changed
    when: {model: {in: [News, Recipe]}}
    do:
      - remove_tags: [sport, draft]
      - remove_channels: [app]
  - id: vocab
    on: content_item.changed
    do:
      - auto_tag: {vocabulary: {football: [football, voetbal], tennis: [tennis]}, match: substring}
  - id: fields
    on: content_item.changed
    when: {title: {fz: e}}
    do:
      - update: {status: archived, items: {en-GB: {intro: {body: "{{ rule.id }}"}}}}
"""
CHANNELS = [{"id": "c-web", "slug": "web"}, {"id": "c-app", "slug": "app"}, {"id": "c-nl", "slug": "newsletter"}]
NAMES = st.sampled_from(["sport", "Sport", "SPORT", "draft", "football", "Fóotball", "tennis", "news", "recipe"])
LOCALES = st.lists(st.sampled_from(["en-GB", "nl-NL", "de-DE"]), min_size=1, max_size=3, unique=True)
TEXT = st.text(alphabet="abcdeéfoFtlvnis <>/p", max_size=40)


@st.composite
def items(draw: st.DrawFn) -> dict:
    locales = draw(LOCALES)
    fields = {}
    for locale in locales:
        tags = [{"body": n, "slug": n.lower()} for n in draw(st.lists(NAMES, max_size=4))]
        fields[locale] = {"title": {"body": draw(TEXT)}, "content": {"body": draw(TEXT)},
                          "intro": {"body": draw(st.sampled_from(["fields", "other"]))},
                          "tags": {"items": tags}}
    channels = [{"id": c} for c in draw(st.lists(st.sampled_from(["c-web", "c-app", "c-nl"]), unique=True))]
    return {"id": "p1", "model": {"body": draw(st.sampled_from(["Article", "News", "Recipe"]))},
            "status": draw(st.sampled_from(["draft", "archived"])), "locales": locales,
            "channels": channels, "items": fields}


def _ruleset(tmp: Path):
    path = tmp / "rules.yaml"
    path.write_text(RULES)
    return load_rules(path)


def test_replanning_after_the_put_plans_nothing(tmp_path: Path) -> None:
    ruleset = _ruleset(tmp_path)
    envelope = {"id": "e", "event": "content_item.changed", "payload": {"id": "p1"}}

    @settings(max_examples=300, deadline=None)
    @given(items())
    def check(item: dict) -> None:
        first = evaluate(ruleset, envelope, item, channels=CHANNELS, now=0)
        assert not first.errors
        puts = [c for c in first.plan if c.kind == "put"]
        assert len(puts) <= 1
        if not puts:
            return
        assert puts[0].body, "an empty diff plans no PUT"
        again = evaluate(ruleset, envelope, apply_put(item, puts[0].body), channels=CHANNELS, now=0)
        assert again.plan == (), again.plan

    check()
