"""Today's PUT replaces each locale it names: the change merged into the fetched item, pure over data."""
from __future__ import annotations

import copy

import pytest

from prepr.mutation import full_put, writable

ITEM = {
    "id": "p1", "label": "ContentItem", "status": "draft", "locales": ["en-GB", "nl-NL"],
    "channels": [{"id": "ch-web", "label": "Channel"}],
    "items": {
        "en-GB": {
            "title": {"id": "f1", "label": "Text", "body": "Late winner", "format": None},
            "intro": {"id": "f2", "label": "Text", "body": "A header in the 90th minute", "format": "HTML"},
            "tags": {"label": "Tag", "items": [{"id": "t1", "label": "Tag", "body": "news", "slug": "news"}]},
            "cover": {"label": "Asset", "items": [{"id": "a1", "label": "Photo", "name": "goal.jpg"}]},
            "minutes": 90, "featured": True,
            "location": {"label": "Coordinates", "latitude": 52.37, "longitude": 4.89},
        },
        "nl-NL": {"title": {"id": "f3", "label": "Text", "body": "Late winnaar"}},
    },
}


def test_a_tag_change_sends_the_whole_locale_and_nothing_else() -> None:
    change = {"items": {"en-GB": {"tags": {"items": [{"body": "news"}, {"body": "sport"}]}}}}
    mutation = full_put(copy.deepcopy(ITEM), change)
    assert mutation.transitions == []
    assert mutation.body == {"locales": ["en-GB"], "items": {"en-GB": {
        "title": {"body": "Late winner"},
        "intro": {"body": "A header in the 90th minute", "format": "HTML"},
        "tags": {"items": [{"body": "news"}, {"body": "sport"}]},
        "cover": {"items": [{"id": "a1"}]},
        "minutes": 90, "featured": True,
        "location": {"latitude": 52.37, "longitude": 4.89},
    }}}


def test_a_field_update_merges_into_the_field_and_keeps_its_other_keys() -> None:
    mutation = full_put(ITEM, {"items": {"en-GB": {"intro": {"body": "Rewritten"}}, "nl-NL": {"summary": {"body": "Kort"}}}})
    assert mutation.body["locales"] == ["en-GB", "nl-NL"]
    assert mutation.body["items"]["en-GB"]["intro"] == {"body": "Rewritten", "format": "HTML"}
    assert mutation.body["items"]["nl-NL"] == {"title": {"body": "Late winnaar"}, "summary": {"body": "Kort"}}


def test_top_level_changes_name_the_first_locale_unchanged() -> None:
    mutation = full_put(ITEM, {"channels": [{"id": "ch-web"}, {"id": "ch-app"}]})
    assert mutation.body["locales"] == ["en-GB"]
    assert mutation.body["channels"] == [{"id": "ch-web"}, {"id": "ch-app"}]
    assert mutation.body["items"]["en-GB"] == writable(ITEM["items"]["en-GB"])
    assert "nl-NL" not in mutation.body["items"]


@pytest.mark.parametrize("status,verb", [("published", "publish"), ("unpublished", "unpublish")])
def test_publishing_is_a_patch_per_locale_not_a_field(status: str, verb: str) -> None:
    mutation = full_put(ITEM, {"status": status})
    assert mutation.body is None
    assert mutation.transitions == [("en-GB", verb), ("nl-NL", verb)]


def test_nothing_to_change_sends_nothing_and_the_item_is_not_touched() -> None:
    before = copy.deepcopy(ITEM)
    assert full_put(ITEM, {"status": "draft"}).body == {"locales": ["en-GB"], "items": {
        "en-GB": writable(ITEM["items"]["en-GB"])}, "status": "draft"}
    assert full_put({**ITEM, "status": "published"}, {"status": "published"}).transitions == []
    assert full_put(ITEM, {}).body is None
    assert ITEM == before


def test_an_item_without_locales_cannot_be_written_blindly() -> None:
    with pytest.raises(ValueError):
        full_put({"id": "x"}, {"channels": []})
