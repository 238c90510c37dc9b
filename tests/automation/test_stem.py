"""auto_tag `match: stem`: keywords and text reduced by the Snowball stemmer of each locale's
language, so inflected forms match; real inflections in English, Dutch and German."""
from __future__ import annotations

from pathlib import Path

import pytest

from automation import evaluate, load_rules

RULE = """version: 1
rules:
  - id: topics
    on: content_item.changed
    do:
      - auto_tag:
          match: {match}
          vocabulary:
            politics: [election, verkiezing, Wahl, football club]
            family: [parent, kind, huis, Haus]
"""
CASES = [  # locale, text, tags found by stem
    ("en-GB", "The elections were close; both football clubs backed the winner.", ["politics"]),
    ("en-GB", "The newly elected mayor met the parents.", ["politics", "family"]),
    ("nl-NL", "De verkiezingen van woensdag: alle kinderen bleven thuis in hun huizen.", ["politics", "family"]),
    ("de-DE", "Nach den Wahlen spielten die Kinder vor den Häusern.", ["politics", "family"]),
    ("de-DE", "Die Häuser der Familien.", ["family"]),
]


def _tags(tmp_path: Path, match: str, locale: str, text: str, extra: str = "") -> list[str]:
    path = tmp_path / "r.yaml"
    path.write_text(RULE.format(match=match) + extra)
    item = {"id": "p1", "locales": [locale], "items": {locale: {"content": {"body": f"<p>{text}</p>"}}}}
    result = evaluate(load_rules(path), {"event": "content_item.changed", "payload": {"id": "p1"}}, item)
    if not result.plan:
        return []
    return [t["body"] for t in result.plan[0].body["items"][locale]["tags"]["items"]]


@pytest.mark.parametrize(("locale", "text", "tags"), CASES, ids=[c[1][:24] for c in CASES])
def test_inflected_forms_match_by_stem_and_not_by_word(tmp_path: Path, locale: str, text: str, tags: list) -> None:
    assert sorted(_tags(tmp_path, "stem", locale, text)) == sorted(tags)
    assert _tags(tmp_path, "word", locale, text) == []  # the exact-word match misses every one


def test_each_locale_is_stemmed_in_its_own_language(tmp_path: Path) -> None:
    # Dutch "kinderen" -> "kinder" is not the Dutch stem of "kind" under the English stemmer
    path = tmp_path / "r.yaml"
    path.write_text(RULE.format(match="stem"))
    item = {"id": "p1", "locales": ["en-GB", "nl-NL"],
            "items": {"en-GB": {"content": {"body": "Elections"}}, "nl-NL": {"content": {"body": "Huizen"}}}}
    result = evaluate(load_rules(path), {"event": "content_item.changed", "payload": {"id": "p1"}}, item)
    body = result.plan[0].body["items"]
    assert body["en-GB"]["tags"]["items"] == [{"body": "politics"}]
    assert body["nl-NL"]["tags"]["items"] == [{"body": "family"}]


def test_a_locale_without_a_stemmer_falls_back_to_words_and_language_overrides(tmp_path: Path) -> None:
    assert _tags(tmp_path, "stem", "xx-XX", "election day") == ["politics"]
    assert _tags(tmp_path, "stem", "xx-XX", "elections") == []
    forced = RULE.format(match="stem").replace("match: stem", "match: stem\n          language: nl")
    path = tmp_path / "forced.yaml"
    path.write_text(forced)
    item = {"id": "p1", "locales": ["xx-XX"], "items": {"xx-XX": {"content": {"body": "verkiezingen"}}}}
    result = evaluate(load_rules(path), {"event": "content_item.changed", "payload": {"id": "p1"}}, item)
    assert result.plan[0].body["items"]["xx-XX"]["tags"]["items"] == [{"body": "politics"}]
