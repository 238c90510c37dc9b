"""The sandbox's two Prepr dialects (SPEC §9) over real HTTP: which paths each mode serves, the
content_items PUT that replaces whole locales, publish / unpublish per locale, labels, customers."""
from __future__ import annotations

import json
import os
import subprocess

import pytest
import requests

from sandbox.seed import ASSETS, PERSONS
from tests.conftest import BIN, free_port
from tests.sandbox.test_sandbox_webhooks import SECRET, Receiver

LINKED, ITEM = "aaaaaaaa-0000-4000-8000-000000000001", "aaaaaaaa-0000-4000-8000-000000000002"
COVER = ASSETS[0]["id"]
SEED = {"publications": [
    {"id": LINKED, "model": {"body": "Article"}, "locales": ["en-GB"], "status": "published",
     "items": {"en-GB": {"title": {"body": "Linked story"}}}},
    {"id": ITEM, "model": {"body": "Article"}, "locales": ["en-GB", "nl-NL"], "status": "draft",
     "channels": [{"slug": "web"}], "slug": {"en-GB": "derby-day", "nl-NL": "derby-dag"},
     "items": {loc: {"title": {"body": title}, "intro": {"body": f"{title}, intro"},
                     "tags": {"items": [{"body": "sport"}, {"body": "Premier League"}]},
                     "cover": {"items": [{"id": COVER}]}, "related": {"items": [{"id": LINKED}]},
                     "rating": rating, "featured": featured}
               for loc, title, rating, featured in (("en-GB", "Derby day", 4, True),
                                                    ("nl-NL", "Derbydag", 3, False))}},
]}


def call(sandbox, method: str, path: str, body: object = None, **headers: str) -> requests.Response:
    return requests.request(method, f"{sandbox.url}{path}", json=body, timeout=10,
                            headers={"Authorization": f"Bearer {sandbox.token}", **headers})


def item(sandbox, path: str = f"/content_items/{ITEM}") -> dict:
    answer = call(sandbox, "GET", path)
    assert answer.status_code == 200, answer.text
    return answer.json()


PUBLICATIONS = [("GET", "/publications"), ("GET", f"/publications/{ITEM}"), ("PUT", f"/publications/{ITEM}"),
                ("POST", "/publications/bulk/put?title[0][fz]=zzz-none"),
                ("POST", "/publications/bulk/delete?title[0][fz]=zzz-none"),
                ("POST", "/publications/bulk/webhooks?title[0][fz]=zzz-none"),
                ("GET", "/persons"), ("GET", f"/persons/{PERSONS[0]['id']}")]
CONTENT_ITEMS = [("GET", "/content_items?limit=1&fields=id"), ("GET", f"/content_items/{ITEM}"),
                 ("PUT", f"/content_items/{ITEM}"), ("PATCH", f"/content_items/{ITEM}/en-GB/publish"),
                 ("PATCH", f"/content_items/{ITEM}/en-GB/unpublish"),
                 ("GET", "/customers"), ("GET", f"/customers/{PERSONS[0]['id']}")]
NEVER = [("POST", "/content_items/bulk/put"), ("POST", "/content_items/bulk/delete"),
         ("POST", "/content_items/bulk/webhooks")]
BODIES = {"PUT": {"locales": ["en-GB"], "items": {"en-GB": {"title": {"body": "Derby day"}}}},
          "POST": {"event": "content_item.changed"}}


@pytest.mark.parametrize("api", ["both", "publications", "content_items"])
def test_each_mode_serves_its_paths_and_404s_the_other(sandbox_factory, api):
    sandbox = sandbox_factory(seed=SEED, api=api)
    assert sandbox.api == api and requests.get(f"{sandbox.url}/health", timeout=5).json()["api"] == api
    served = (PUBLICATIONS if api != "content_items" else []) + (CONTENT_ITEMS if api != "publications" else [])
    for method, path in PUBLICATIONS + CONTENT_ITEMS + NEVER:
        answer = call(sandbox, method, path, BODIES.get(method))
        if (method, path) in served:
            assert answer.status_code == 200, (method, path, answer.status_code, answer.text)
        else:
            assert answer.status_code == 404, (method, path, answer.status_code)
            assert answer.json()["error"]["status"] == 404
    assert call(sandbox, "GET", "/tags").status_code == 200 and call(sandbox, "GET", "/channels").status_code == 200
    assert call(sandbox, "GET", "/content_items?limit=1&fields=id", Authorization="Bearer nope").status_code == 401


def test_content_items_put_needs_locales(sandbox_factory):
    sandbox = sandbox_factory(seed=SEED)
    before = item(sandbox)
    for body in ({"items": {"en-GB": {"title": {"body": "x"}}}}, {"locales": [], "items": {}},
                 {"locales": "en-GB"}, {"locales": [None]}, {"locales": [""]}, {}):
        answer = call(sandbox, "PUT", f"/content_items/{ITEM}", body)
        assert answer.status_code == 400 and "locales" in answer.json()["error"]["message"], (body, answer.text)
    for bad in ([1], {"locales": ["en-GB"], "items": ["x"]}, {"locales": ["en-GB"], "items": {"en-GB": "x"}},
                {"locales": ["en-GB"], "items": {"en-GB": {"tags": {"items": [7]}}}},
                {"locales": ["en-GB"], "model": [1]}, {"locales": ["en-GB"], "channels": 3},
                {"locales": ["en-GB"], "containers": [{}]}, {"locales": ["en-GB"], "status": {"en-GB": "draft"}}):
        assert call(sandbox, "PUT", f"/content_items/{ITEM}", bad).status_code == 422, bad
    assert call(sandbox, "PUT", "/content_items/nope", {"locales": ["en-GB"]}).status_code == 404
    assert item(sandbox) == before
    # The seeds' dialect still merges, and needs no locales.
    assert call(sandbox, "PUT", f"/publications/{ITEM}", {"items": {"en-GB": {"intro": {"body": "New"}}}}).ok
    merged = item(sandbox)["items"]["en-GB"]
    assert merged["intro"]["body"] == "New" and merged == {**before["items"]["en-GB"], "intro": merged["intro"]}


def test_put_replaces_each_named_locale_exactly_and_no_other(sandbox_factory):
    sandbox = sandbox_factory(seed=SEED)
    before = item(sandbox)
    tag_id = before["items"]["en-GB"]["tags"]["items"][0]["id"]
    nl = {"title": {"body": "Nieuwe titel"}, "tags": {"items": [{"id": tag_id}, {"body": "Eredivisie"}]},
          "related": {"items": [{"id": LINKED}]}, "rating": 5, "featured": True, "extra": None}
    answer = call(sandbox, "PUT", f"/content_items/{ITEM}",
                  {"locales": ["nl-NL"], "items": {"nl-NL": nl, "en-GB": {"title": {"body": "ignored: not named"}}}})
    assert answer.status_code == 200 and answer.json()["label"] == "ContentItem"
    after = item(sandbox)
    got = after["items"]["nl-NL"]
    assert set(got) == {"title", "tags", "related", "rating", "featured"}  # intro and cover are gone
    assert got["title"] == {"label": "Text", "body": "Nieuwe titel"} and got["rating"] == 5 and got["featured"] is True
    assert [t["body"] for t in got["tags"]["items"]] == ["sport", "Eredivisie"]
    assert got["related"]["items"][0]["id"] == LINKED
    # en-GB byte for byte (the encoding tells True from 1 and 4.0 from 4, where == would not)
    assert json.dumps(after["items"]["en-GB"]) == json.dumps(before["items"]["en-GB"])
    assert after["items"]["en-GB"]["featured"] is True and after["items"]["en-GB"]["rating"] == 4
    keep = ("id", "created_on", "model", "locales", "status", "slug", "channels", "publish_on", "created_by")
    assert {k: after[k] for k in keep} == {k: before[k] for k in keep} and after["changed_on"] >= before["changed_on"]
    # A locale named with no content becomes empty; top-level keys behave as in the seeds' dialect.
    assert call(sandbox, "PUT", f"/content_items/{ITEM}", {"locales": ["nl-NL"], "status": "review",
                                                          "slug": {"nl-NL": "nieuw"}}).ok
    emptied = item(sandbox)
    assert emptied["items"]["nl-NL"] == {} and emptied["items"]["en-GB"] == before["items"]["en-GB"]
    assert emptied["status"] == "review" and emptied["slug"] == {"en-GB": "derby-day", "nl-NL": "nieuw"}


def test_get_then_put_round_trip_changes_only_the_edit(sandbox_factory):
    sandbox = sandbox_factory(seed=SEED)
    before = item(sandbox)
    # the whole item, as read, sent back: nothing changes but changed_on
    assert call(sandbox, "PUT", f"/content_items/{ITEM}", {**before, "locales": ["en-GB", "nl-NL"]}).ok
    same = item(sandbox)
    assert {k: v for k, v in same.items() if k not in ("changed_on", "updated_by")} == {k: v for k, v in before.items() if k not in ("changed_on", "updated_by")}
    # one locale read, one field edited, sent back whole
    en = json.loads(json.dumps(before["items"]["en-GB"]))
    en["intro"]["body"] = "Edited intro"
    en["tags"]["items"].append({"body": "derby"})
    assert call(sandbox, "PUT", f"/content_items/{ITEM}", {"locales": ["en-GB"], "items": {"en-GB": en}}).ok
    after = item(sandbox)
    for name, value in before["items"]["en-GB"].items():
        if name not in ("intro", "tags"):
            assert after["items"]["en-GB"][name] == value, name
    assert after["items"]["en-GB"]["intro"] == {"label": "Text", "body": "Edited intro"}
    assert after["items"]["en-GB"]["tags"]["items"][:2] == before["items"]["en-GB"]["tags"]["items"]
    assert after["items"]["en-GB"]["tags"]["items"][2]["body"] == "derby"
    assert after["items"]["nl-NL"] == before["items"]["nl-NL"]
    assert item(sandbox, f"/publications/{ITEM}")["items"] == after["items"]  # one store, two views
    assert item(sandbox, f"/publications/{ITEM}")["label"] == "Publication" and after["label"] == "ContentItem"


@pytest.fixture
def receiver():
    rec = Receiver()
    yield rec
    rec.close()


def test_publish_and_unpublish_per_locale_with_webhooks(sandbox_factory, receiver):
    sandbox = sandbox_factory(seed=SEED, webhook_url=receiver.url, webhook_secret=SECRET)
    answer = call(sandbox, "PATCH", f"/content_items/{ITEM}/nl-NL/publish", {"publish_on": 1735689600})
    assert answer.status_code == 200 and answer.json()["label"] == "ContentItem"
    published = item(sandbox)
    assert published["status"] == "published" and published["publish_on"] == {"nl-NL": "2025-01-01T00:00:00+00:00"}
    assert call(sandbox, "PATCH", f"/content_items/{ITEM}/en-GB/publish").ok  # no body: now
    assert set(item(sandbox)["publish_on"]) == {"en-GB", "nl-NL"}
    assert call(sandbox, "PATCH", f"/content_items/{ITEM}/en-GB/unpublish").ok
    unpublished = item(sandbox)
    assert unpublished["status"] == "unpublished" and list(unpublished["publish_on"]) == ["nl-NL"]
    assert call(sandbox, "PATCH", "/content_items/nope/en-GB/publish").status_code == 404
    assert call(sandbox, "PATCH", f"/content_items/{ITEM}/de-DE/publish").status_code == 422
    for bad in ("tomorrow", True, 1e300):
        assert call(sandbox, "PATCH", f"/content_items/{ITEM}/en-GB/publish", {"publish_on": bad}).status_code == 422
    assert call(sandbox, "PATCH", f"/content_items/{ITEM}/en-GB/publish", [1]).status_code == 422
    call(sandbox, "PUT", f"/publications/{ITEM}", {"status": "published"})  # the seeds' dialect: Publication
    events = receiver.wait_for(5)
    assert [(e["event"], e["payload"]["label"]) for e in events] == [
        ("content_item.published", "ContentItem"), ("content_item.published", "ContentItem"),
        ("content_item.unpublished", "ContentItem"), ("content_item.changed", "Publication"),
        ("content_item.published", "Publication")]
    assert {e["payload"]["id"] for e in events} == {ITEM} and events[0]["performed_by"] == {"id": sandbox.user_id}
    assert events[0]["payload"]["publish_on"] == {"nl-NL": "2025-01-01T00:00:00+00:00"}


def test_content_items_alone_labels_every_webhook_and_read(sandbox_factory, receiver):
    sandbox = sandbox_factory(seed=SEED, webhook_url=receiver.url, webhook_secret=SECRET, api="content_items")
    created = call(sandbox, "POST", "/content_items", {"model": {"body": "News"}, "locales": ["en-GB"],
                                                       "items": {"en-GB": {"title": {"body": "Fresh"}}}})
    assert created.status_code == 201 and created.json()["label"] == "ContentItem"
    assert call(sandbox, "POST", "/content_items", {"locales": ["en-GB"]}).status_code == 422  # model required
    editor = PERSONS[1]["id"]
    assert call(sandbox, "PUT", f"/content_items/{created.json()['id']}", {"locales": ["en-GB"]},
                **{"X-Sandbox-User": editor}).ok
    assert call(sandbox, "DELETE", f"/content_items/{created.json()['id']}").status_code == 204
    listed = call(sandbox, "GET", "/content_items?limit=1&fields=id").json()
    assert listed["total"] == 2 and listed["items"][0].keys() >= {"id", "label"}
    assert {i["label"] for i in call(sandbox, "GET", "/content_items").json()["items"]} == {"ContentItem"}
    events = receiver.wait_for(3)
    assert [e["event"] for e in events] == ["content_item.created", "content_item.changed", "content_item.deleted"]
    assert {e["payload"]["label"] for e in events} == {"ContentItem"} and events[1]["performed_by"] == {"id": editor}


def test_customers_are_the_persons(sandbox_factory):
    sandbox = sandbox_factory(seed=SEED)
    persons = call(sandbox, "GET", "/persons?limit=100").json()
    customers = call(sandbox, "GET", "/customers?limit=100").json()
    assert customers["total"] == persons["total"] >= len(PERSONS) and customers["skip"] == 0
    assert [c["id"] for c in customers["items"]] == [p["id"] for p in persons["items"]]
    assert {c["label"] for c in customers["items"]} == {"Customer"}
    one = call(sandbox, "GET", f"/customers/{PERSONS[2]['id']}").json()
    assert one == {**call(sandbox, "GET", f"/persons/{PERSONS[2]['id']}").json(), "label": "Customer"}
    assert one["email"] == PERSONS[2]["email"]
    assert call(sandbox, "GET", "/customers?limit=2&skip=1").json()["items"][0]["id"] == persons["items"][1]["id"]
    missing = call(sandbox, "GET", "/customers/nope")
    assert missing.status_code == 404 and "nope" in missing.json()["error"]["message"]
    assert sandbox.env["PREPR_CUSTOMERS_URL"] == sandbox.url


def test_an_unknown_api_is_refused_before_serving(tmp_path):
    done = subprocess.run([str(BIN / "prepr-automation"), "sandbox", "--port", str(free_port()), "--data-dir",
                           str(tmp_path), "--api", "graphql"], capture_output=True, text=True, timeout=30,
                          env={**os.environ, "PREPR_ACCESS_TOKEN": "t"})
    assert done.returncode == 2 and "--api" in done.stderr
    from sandbox.app import create_app
    with pytest.raises(ValueError, match="api must be one of"):
        create_app(tmp_path, "t", api="graphql")


def test_a_seed_can_say_there_are_no_channels(sandbox_factory):
    sandbox = sandbox_factory(seed={"channels": [], "publications": [SEED["publications"][0]]}, api="content_items")
    assert call(sandbox, "GET", "/channels").json()["total"] == 0
    assert call(sandbox, "GET", "/models").json()["total"] == 3  # not named: the demo set
    assert sandbox.reset({"publications": []}) == 0 and call(sandbox, "GET", "/channels").json()["total"] == 3
