"""encode_filter: the exact query encoding, and what it refuses."""
from __future__ import annotations

from datetime import datetime
from urllib.parse import urlencode

import pytest

from prepr.filters import UnsupportedFilter, decode_filter, encode_filter, slugify

UUID_A = "93fb1b38-9a85-4d6e-9639-8c4a8a88454a"
UUID_B = "0e45b74b-e6b7-4346-7b64-a8e446232d76"


def test_rule_style_mapping():
    pairs = encode_filter({"tags": {"in": ["football", "Premier League"]}, "model": {"eq": "Article"},
                           "created_on": {"gt": "2024-01-01T00:00:00+00:00"}})
    assert pairs == [
        ("tags[0][in][0]", "football"), ("tags[0][in][1]", "premier-league"), ("tags[0][param]", "slug"),
        ("model[id]", "Article"),
        ("created_on[0][gt]", "2024-01-01T00:00:00+00:00"),
    ]


def test_list_form_and_all_merge_get_consecutive_indexes():
    listed = encode_filter({"tags": [{"in": ["a", "b"]}, {"all": ["c"]}]})
    merged = encode_filter({"all": [{"tags": {"in": ["a", "b"]}}, {"tags": {"all": ["c"]}}]})
    assert listed == merged == [
        ("tags[0][in][0]", "a"), ("tags[0][in][1]", "b"), ("tags[0][param]", "slug"),
        ("tags[1][all][0]", "c"), ("tags[1][param]", "slug"),
    ]


def test_ids_need_no_param_and_explicit_param_wins():
    assert encode_filter({"channels": {"eq": UUID_A}}) == [("channels[0][eq]", UUID_A)]
    assert encode_filter({"tags": {"eq": "Voetbal Nieuws", "param": "body"}}) == [
        ("tags[0][eq]", "Voetbal Nieuws"), ("tags[0][param]", "body")]
    assert encode_filter({"created_by": {"eq": "ed@example.com"}}) == [
        ("created_by[0][eq]", "ed@example.com"), ("created_by[0][param]", "email")]
    assert encode_filter({"assigned_to": {"in": [UUID_A, UUID_B]}}) == [
        ("assigned_to[0][in][0]", UUID_A), ("assigned_to[0][in][1]", UUID_B)]


@pytest.mark.parametrize("op,value,expected", [
    ("eq", "x", [("slug[0][eq]", "x")]),
    ("neq", "x", [("slug[0][neq]", "x")]),
    ("in", ["x", "y"], [("slug[0][in][0]", "x"), ("slug[0][in][1]", "y")]),
    ("all", ["x"], [("slug[0][all][0]", "x")]),
    ("has", True, [("slug[0][has]", "true")]),
    ("sw", "foo", [("slug[0][sw]", "foo")]),
    ("fz", "foo bar", [("slug[0][fz]", "foo bar")]),
])
def test_every_operator(op, value, expected):
    assert encode_filter({"slug": {op: value}}) == expected


def test_dates_and_ranges():
    pairs = encode_filter({"changed_on": {"gte": datetime(2024, 5, 1), "lt": 1714608000}})
    assert pairs == [("changed_on[0][gte]", "2024-05-01T00:00:00+00:00"), ("changed_on[0][lt]", "1714608000")]
    assert encode_filter({"publish_on": {"lte": "2024-05-01"}}) == [("publish_on[0][lte]", "2024-05-01")]


def test_model_status_are_single_and_model_names_map_to_ids():
    assert encode_filter({"model": {"in": ["Article", "News"]}}, model_ids={"Article": UUID_A}) == [
        ("model[in][0]", UUID_A), ("model[in][1]", "News")]
    assert encode_filter({"status": {"eq": "published"}}) == [("status[eq]", "published")]
    assert encode_filter({"model": "Recipe"}) == [("model[id]", "Recipe")]
    with pytest.raises(UnsupportedFilter):
        encode_filter({"model": [{"eq": "A"}, {"neq": "B"}]})


@pytest.mark.parametrize("mapping,field", [
    ({"title": {"matches": "^a"}}, "title"),
    ({"tags": {"changed": True}}, "tags"),
    ({"any": [{"title": {"fz": "x"}}]}, "any"),
    ({"not": {"tags": {"in": ["x"]}}}, "not"),
    ({"items.*.intro.body": {"fz": "x"}}, "items.*.intro.body"),
    ({"event.performed_by": {"eq": "x"}}, "event.performed_by"),
    ({"label": {"eq": "Post"}}, "label"),
    ({"title": {"like": "x"}}, "title"),
    ({"tags": {"in": [UUID_A, "sport"]}}, "tags"),
    ({"tags": {"in": []}}, "tags"),
    ({"slug": {"has": "yes"}}, "slug"),
    ({"slug": {"eq": ["a", "b"]}}, "slug"),
])
def test_unsupported_names_the_field(mapping, field):
    with pytest.raises(UnsupportedFilter) as info:
        encode_filter(mapping)
    assert info.value.field == field and info.value.reason


def test_pure_and_decodable():
    mapping = {"tags": {"in": ["a"]}, "model": {"eq": "Article"}, "title": {"fz": "x"}}
    snapshot = repr(mapping)
    pairs = encode_filter(mapping)
    assert repr(mapping) == snapshot and encode_filter(mapping) == pairs
    assert urlencode(pairs).startswith("tags%5B0%5D%5Bin%5D%5B0%5D=a")
    assert decode_filter(pairs) == {"tags": [{"in": ["a"], "param": "slug"}], "model": [{"eq": "Article"}],
                                    "title": [{"fz": "x"}]}
    assert encode_filter(None) == [] and encode_filter({}) == []
    assert slugify("Équipe Première") == "equipe-premiere"
