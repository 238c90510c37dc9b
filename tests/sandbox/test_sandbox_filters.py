"""Every operator and param of encode_filter, checked against what the sandbox returns."""
from __future__ import annotations

import pytest

from prepr.filters import encode_filter

P1, P2, P3 = "11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222", \
    "33333333-3333-4333-8333-333333333333"
CONTAINER = "c0c0c0c0-0000-4000-8000-000000000001"
EMMA_EMAIL = "emma@example.com"


def _pub(id_, model, title, tags, channels, status, created, locales=("en-GB",), author=None, extra=None):
    items = {loc: {"title": {"body": title}, "intro": {"body": f"{title} intro"},
                   "tags": {"items": [{"body": t} for t in tags]}} for loc in locales}
    body = {"id": id_, "model": {"body": model}, "locales": list(locales), "items": items,
            "channels": [{"slug": c} for c in channels], "status": status, "created_on": created,
            "changed_on": created, "publish_on": {loc: created for loc in locales} if status == "published" else {}}
    if author:
        body["created_by"] = author
    body.update(extra or {})
    return body


@pytest.fixture
def filtered(sandbox_factory):
    from sandbox.seed import PERSONS

    emma = PERSONS[0]["id"]
    seed = {"publications": [
        _pub(P1, "Article", "Football derby ends level", ["Sport", "Premier League"], ["web", "app"], "published",
             "2024-01-10T10:00:00+00:00", author=emma, extra={"containers": [{"id": CONTAINER}]}),
        _pub(P2, "News", "Tennis final at Wimbledon", ["Sport"], ["app"], "draft", "2024-02-10T10:00:00+00:00",
             locales=("en-GB", "nl-NL"), extra={"assigned_to": {"id": emma}}),
        _pub(P3, "Recipe", "Crème brûlée", [], ["newsletter"], "published", "2024-03-10T10:00:00+00:00",
             locales=("nl-NL",), extra={"slug": {"nl-NL": "creme-brulee-recept"}}),
    ]}
    sandbox = sandbox_factory(seed=seed)
    client = sandbox.client()
    models = {m["body"]: m["id"] for m in client.list_models()}
    channels = {c["slug"]: c["id"] for c in client.list_channels()}
    return sandbox, client, models, channels, emma


def ids(client, mapping, **kw) -> set[str]:
    return {p["id"] for p in client.list_items(mapping, fields="id", **kw)}


def test_operators_and_params(filtered):
    sandbox, client, models, channels, emma = filtered
    cases = [
        ({"model": {"eq": "Article"}}, {P1}),
        ({"model": {"eq": models["News"]}}, {P2}),
        ({"model": {"in": ["Article", "Recipe"]}}, {P1, P3}),
        ({"model": {"neq": "Article"}}, {P2, P3}),
        ({"status": {"eq": "published"}}, {P1, P3}),
        ({"status": {"neq": "published"}}, {P2}),
        ({"locales": {"in": ["nl-NL"]}}, {P2, P3}),
        ({"locales": {"all": ["en-GB", "nl-NL"]}}, {P2}),
        ({"tags": {"in": ["sport"]}}, {P1, P2}),
        ({"tags": {"eq": "Premier League"}}, {P1}),
        ({"tags": {"all": ["sport", "premier-league"]}}, {P1}),
        ({"tags": {"neq": "premier-league"}}, {P2, P3}),
        ({"tags": {"has": False}}, {P3}),
        ({"tags": {"has": True}}, {P1, P2}),
        ({"tags": {"eq": "Sport", "param": "body"}}, {P1, P2}),
        ({"tags": [{"in": ["sport"]}, {"neq": "premier-league"}]}, {P2}),
        ({"all": [{"tags": {"in": ["sport"]}}, {"model": {"eq": "News"}}]}, {P2}),
        ({"channels": {"eq": "app"}}, {P1, P2}),
        ({"channels": {"in": [channels["newsletter"]]}}, {P3}),
        ({"channels": {"all": ["web", "app"]}}, {P1}),
        ({"containers": {"eq": CONTAINER}}, {P1}),
        ({"containers": {"has": False}}, {P2, P3}),
        ({"created_by": {"eq": emma}}, {P1}),
        ({"created_by": {"eq": EMMA_EMAIL}}, {P1}),
        ({"assigned_to": {"eq": EMMA_EMAIL}}, {P2}),
        ({"assigned_to": {"has": True}}, {P2}),
        ({"slug": {"eq": "creme-brulee-recept"}}, {P3}),
        ({"slug": {"sw": "football"}}, {P1}),
        ({"title": {"fz": "WIMBLEDON"}}, {P2}),
        ({"title": {"fz": "creme brulee"}}, {P3}),
        ({"title": {"sw": "tennis"}}, {P2}),
        ({"q": {"fz": "derby ends level intro"}}, {P1}),
        ({"created_on": {"gt": "2024-01-10T10:00:00+00:00"}}, {P2, P3}),
        ({"created_on": {"gte": "2024-01-10T10:00:00+00:00"}}, {P1, P2, P3}),
        ({"created_on": {"lt": "2024-02-10T10:00:00+00:00"}}, {P1}),
        ({"created_on": {"lte": "2024-02-10T10:00:00+00:00", "gt": "2024-01-01"}}, {P1, P2}),
        ({"changed_on": {"gte": 1707559200}}, {P2, P3}),  # epoch seconds for 2024-02-10T10:00Z
        ({"publish_on": {"has": True}}, {P1, P3}),
        ({"publish_on": {"lt": "2024-03-01"}}, {P1}),
    ]
    failures = [(m, got, want) for m, want in cases if (got := ids(client, m)) != want]
    assert not failures, failures
    # And the query really travelled in Prepr's encoding.
    queries = [r["query"] for r in sandbox.requests(path="/publications")]
    assert any("tags%5B0%5D%5Bin%5D%5B0%5D=sport&tags%5B0%5D%5Bparam%5D=slug" in q for q in queries)
    assert any(q.startswith("model%5Bid%5D=Article") for q in queries)


def test_model_names_map_to_ids(filtered):
    _sandbox, client, models, _channels, _emma = filtered
    pairs = encode_filter({"model": {"eq": "Recipe"}}, model_ids=models)
    assert pairs == [("model[id]", models["Recipe"])]
    assert {p["id"] for p in client.list_items(extra_params=pairs)} == {P3}


def test_bulk_endpoints_apply_to_matches(filtered, sandbox_factory):
    sandbox, client, _models, channels, _emma = filtered
    result = client.bulk_put({"tags": {"in": ["sport"]}}, {"channels": [{"id": channels["newsletter"]}]})
    assert {i["id"] for i in result["items"]} == {P1, P2} and result["total"] == 2
    assert ids(client, {"channels": {"eq": "newsletter"}}) == {P1, P2, P3}
    assert client.bulk_webhooks({"model": {"eq": "Recipe"}}, "content_item.published")["total"] == 1
    assert client.bulk_delete({"status": {"eq": "draft"}})["total"] == 1
    assert ids(client, None) == {P1, P3}


def test_bad_filters_are_400(filtered):
    sandbox, client, *_ = filtered
    from prepr import PreprClientError

    with pytest.raises(PreprClientError) as info:
        client.request("GET", "/publications", params={"tags[0][like]": "x"})
    assert info.value.status == 400
    with pytest.raises(PreprClientError):
        client.request("GET", "/publications", params={"tags[0][eq]": "x", "tags[0][param]": "colour"})
