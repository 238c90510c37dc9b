"""The console under hostile input, over the Flask test client and real Redis: every query value
validated (never a 500), event ids with any character linkable, dead-letter replays once each."""
from __future__ import annotations

import html
import json
import re
import threading
from urllib.parse import quote

import pytest
import redis
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from prepr_automation.settings import Settings
from tasks.deadletters import DeadLetter, DeadLetters
from tasks.replay import replay_letters
from webhooks import create_app
from webhooks.signature import sign

TOKEN = "hostile-console-admin-token-77e2"
KEY = "hostile-console-key"
IDS = ["a/b", "q?x=1&y=2", "h#frag", "p%41%2F", "sp ace", "ünï/cødé", "a/explain", "/lead", "trail/", "x+y;z"]


@pytest.fixture
def console(redis_url: str) -> FlaskClient:
    settings = Settings(webhook_secrets=(KEY,), broker_url=redis_url, admin_token=TOKEN)
    client = create_app(settings, listens=lambda event: False).test_client()
    page = client.get("/console/login").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    assert client.post("/console/login", data={"token": TOKEN, "csrf_token": csrf}).status_code == 302
    return client


def _csrf(client: FlaskClient, path: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).get_data(as_text=True)).group(1)


def _deliver(client: FlaskClient, event_id: str) -> None:
    body = json.dumps({"id": event_id, "event": "content_item.changed", "payload": {"id": "p1"}}).encode()
    answer = client.post("/webhooks/prepr", data=body, content_type="application/json",
                         headers={"Prepr-Signature": sign(body, KEY)})
    assert answer.status_code == 202, answer.get_data(as_text=True)


def test_event_ids_with_any_character_are_linkable_and_found(console: FlaskClient) -> None:
    for event_id in IDS:
        _deliver(console, event_id)
    listing = console.get("/console").get_data(as_text=True)
    links = [html.unescape(h) for h in re.findall(r'href="(/console/events/[^"]+)"', listing)]
    assert len(links) == len(IDS)
    for link in links:
        page = console.get(link)
        assert page.status_code == 200, link
        shown = re.search(r"<h1[^>]*>(.*?)</h1>", page.get_data(as_text=True), re.S).group(1)
        assert any(html.escape(i) in shown or i in html.unescape(shown) for i in IDS), (link, shown)
    for event_id in IDS:  # the page, its Explain, and the bearer API, each by the id's encoded form
        link = "/console/events/" + quote(quote(event_id, safe=""), safe="")
        assert console.get(link).status_code == 200, event_id
        assert console.get(link + "/explain").status_code == 200, event_id
        api = console.get("/events/" + quote(event_id, safe=""), headers={"Authorization": f"Bearer {TOKEN}"})
        assert api.status_code == 200 and api.get_json()["event_id"] == event_id, event_id


@pytest.mark.parametrize("query", ["hours=nan", "hours=inf", "hours=1e999", "hours=-inf", "hours=abc", "before=nan",
                                   "before=inf", "before=abc", "hours=%00"])
def test_malformed_numbers_are_400(console: FlaskClient, query: str) -> None:
    assert console.get(f"/console?{query}").status_code == 400


@pytest.mark.parametrize("query", ["hours=-1", "hours=1e9", "hours=6", "before=1e300", "before=-5"])
def test_finite_numbers_are_clamped_not_refused(console: FlaskClient, query: str) -> None:
    assert console.get(f"/console?{query}").status_code == 200


@pytest.mark.parametrize("target", ["/console/status\r\nSet-Cookie: x=1", "https://evil.example/console", "//evil",
                                    "/console\\..\\x", "/consolex", "javascript:alert(1)", "/console/ünï"])
def test_a_hostile_next_goes_to_the_console(redis_url: str, target: str) -> None:
    settings = Settings(webhook_secrets=(KEY,), broker_url=redis_url, admin_token=TOKEN)
    client = create_app(settings, listens=lambda event: False).test_client()
    answer = client.post("/console/login?next=" + quote(target, safe=""),
                         data={"token": TOKEN, "csrf_token": _csrf(client, "/console/login")})
    assert answer.status_code == 302 and answer.headers["Location"] == "/console"


PAGES = ["/console", "/console/status", "/console/rules", "/console/dead-letters", "/console/events/x",
         "/console/events/x/explain", "/console/login"]
NAMES = st.sampled_from(["hours", "before", "outcome", "event", "rule", "next", "page", "x"])
VALUES = st.one_of(st.sampled_from(["nan", "inf", "-inf", "1e999", "-1", "0", "1e-400", "abc", "", "\n", "%",
                                    "https://evil.example/", "content_item.*", "*", "[", "\\", "\x00"]),
                   st.text(max_size=30))


@hsettings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(page=st.sampled_from(PAGES), params=st.lists(st.tuples(NAMES, VALUES), max_size=4))
def test_no_console_page_answers_500_to_any_query(console: FlaskClient, page: str, params: list) -> None:
    answer = console.get(page, query_string=params)
    assert answer.status_code < 500, (page, params, answer.get_data(as_text=True)[:300])


def _letters(client: redis.Redis, n: int) -> list[str]:
    dead = DeadLetters(client)
    return [dead.add(DeadLetter(event_id=f"e{i}", reason="test", task="tasks.process_event",
                                args=[{"id": f"e{i}", "event": "content_item.changed", "payload": {"id": "p"}}]),
                     report=False) for i in range(n)]


def test_replay_all_double_clicked_replays_each_letter_once(redis_url: str, redis_client: redis.Redis) -> None:
    ids = _letters(redis_client, 20)
    start, results = threading.Barrier(2), []

    def click() -> None:
        start.wait()
        results.append(replay_letters(DeadLetters(redis.Redis.from_url(redis_url)), None, redis_url))

    threads = [threading.Thread(target=click) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    replayed = [letter.id for done, _ in results for letter in done]
    assert sorted(replayed) == sorted(ids)  # each once, between the two clicks
    assert redis_client.llen("celery") == 20
    again, missing = replay_letters(DeadLetters(redis_client), ids[:3], redis_url)
    assert again == [] and missing == ids[:3] and redis_client.llen("celery") == 20


def test_a_second_click_on_a_replayed_letter_finds_it_replayed(console: FlaskClient, redis_url: str,
                                                               redis_client: redis.Redis) -> None:
    [letter] = _letters(redis_client, 1)
    replay_letters(DeadLetters(redis_client), [letter], redis_url)  # the first click
    assert redis_client.llen("celery") == 1
    answer = console.post("/console/dead-letters/replay", follow_redirects=True,
                          data={"letter_id": letter, "csrf_token": _csrf(console, "/console/dead-letters")})
    assert answer.status_code == 200 and f"Already replayed: {letter}" in answer.get_data(as_text=True)
    assert redis_client.llen("celery") == 1


def test_explain_of_a_catastrophic_regex_on_a_large_title_answers_fast(redis_url: str, tmp_path) -> None:
    """The console's Explain runs the same RE2 matcher as the worker: `(a+)+$` cannot hold it."""
    import time

    rules = tmp_path / "rules.yaml"
    rules.write_text("version: 1\nrules:\n  - id: hostile\n    on: content_item.changed\n"
                     "    when: {title: {matches: '(a+)+$'}}\n    do: [{add_tags: [x]}]\n")
    settings = Settings(webhook_secrets=(KEY,), broker_url=redis_url, admin_token=TOKEN, rules_path=str(rules))
    client = create_app(settings).test_client()
    csrf = _csrf(client, "/console/login")
    assert client.post("/console/login", data={"token": TOKEN, "csrf_token": csrf}).status_code == 302
    body = json.dumps({"id": "redos", "event": "content_item.changed",
                       "payload": {"id": "p1", "title": "a" * 100_000 + "!"}}).encode()
    assert client.post("/webhooks/prepr", data=body, content_type="application/json",
                       headers={"Prepr-Signature": sign(body, KEY)}).status_code == 202
    started = time.perf_counter()
    page = client.get("/console/events/redos/explain")
    assert page.status_code == 200 and "hostile" in page.get_data(as_text=True)
    assert time.perf_counter() - started < 2.0
