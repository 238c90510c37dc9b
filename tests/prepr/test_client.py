"""PreprClient against a real sandbox over HTTP: calls, errors, secrecy, shared rate limit."""
from __future__ import annotations

import logging
import sys
import textwrap
import time

import pytest

from prepr import (CallRecord, PreprClientError, PreprConnectionError, PreprError, PreprNotFound,
                   PreprRateLimited, PreprServerError, RateLimiter)
from prepr.client import PreprClient
from tests.conftest import free_port


def test_publication_crud_and_hook(sandbox):
    calls: list[CallRecord] = []
    client = sandbox.client(on_call=calls.append)
    web = next(c for c in client.list_channels() if c["slug"] == "web")
    created = client.create_item({
        "model": {"body": "Article"}, "locales": ["en-GB"],
        "items": {"en-GB": {"title": {"body": "Derby day"}, "tags": {"items": [{"body": "Derby"}]}}}})
    assert created["model"]["body"] == "Article" and created["items"]["en-GB"]["tags"]["items"][0]["slug"] == "derby"
    updated = client.write_item(created["id"], {"channels": [{"id": web["id"]}],
                                                        "items": {"en-GB": {"intro": {"body": "Kick-off at three"}}}})
    assert updated["items"]["en-GB"]["title"]["body"] == "Derby day"  # partial: the title is kept
    assert [c["slug"] for c in updated["channels"]] == ["web"]
    fetched = client.get_item(created["id"], fields=["items", "channels"])
    assert fetched["items"]["en-GB"]["intro"]["body"] == "Kick-off at three" and "model" not in fetched
    assert any(t["body"] == "Derby" for t in client.list_tags())
    client.delete_item(created["id"])
    with pytest.raises(PreprNotFound) as info:
        client.get_item(created["id"])
    assert info.value.status == 404 and not info.value.retryable
    assert [(c.method, c.path, c.status) for c in calls][-4:] == [
        ("GET", f"/publications/{created['id']}", 200), ("GET", "/tags", 200),
        ("DELETE", f"/publications/{created['id']}", 204), ("GET", f"/publications/{created['id']}", 404)]
    assert all(c.elapsed_ms >= 0 for c in calls)


def test_assets_persons_models_and_tracking(sandbox):
    client = sandbox.client()
    pub = next(client.list_items({"title": {"fz": "risotto"}}))
    cover = pub["items"]["en-GB"]["cover"]["items"][0]
    assert client.get_asset(cover["id"])["name"] == "kitchen"
    assert client.get_person(pub["created_by"]["id"], fields="email")["email"].endswith("@example.com")
    assert {m["body"] for m in client.list_models()} == {"Article", "News", "Recipe"}
    client.track_event({"event": "View", "label": "automation", "content_item": pub["id"]})
    events = sandbox.tracked_events()
    assert [e["body"]["content_item"] for e in events] == [pub["id"]]
    assert sandbox.requests(path="/events")[0]["status"] == 202


def test_pagination_over_250_items(sandbox_factory):
    seed = {"publications": [{"model": {"body": "News"}, "locales": ["en-GB"],
                              "items": {"en-GB": {"title": {"body": f"Bulletin {n:03d}"}}},
                              "created_on": f"2024-05-{1 + n // 24:02d}T{n % 24:02d}:00:00+00:00"}
                             for n in range(250)]}
    sandbox = sandbox_factory(seed=seed)
    client = sandbox.client()
    titles = [p["items"]["en-GB"]["title"]["body"] for p in client.list_items(fields="items")]
    assert titles == [f"Bulletin {n:03d}" for n in range(250)]
    pages = sandbox.requests(method="GET", path="/publications")
    assert [r["query"].split("&")[-3:] for r in pages] == [
        ["skip=0", "limit=100", "fields=items"], ["skip=100", "limit=100", "fields=items"],
        ["skip=200", "limit=100", "fields=items"]]
    assert len(list(client.list_items(limit=130))) == 130
    assert client.count_items() == 250
    newest = next(client.list_items(sort="-created_on", fields="items"))
    assert newest["items"]["en-GB"]["title"]["body"] == "Bulletin 249"


def test_429_and_retry_after_are_surfaced(sandbox, redis_client):
    limiter = RateLimiter(redis_client, rate=50, key="t429")
    client = sandbox.client(rate_limiter=limiter)
    sandbox.fault("/publications", 429, method="GET", retry_after=2)
    with pytest.raises(PreprRateLimited) as info:
        list(client.list_items())
    error = info.value
    assert (error.status, error.retry_after, error.retryable) == (429, 2.0, True)
    assert (error.method, error.path) == ("GET", "/publications")
    assert limiter.blocked_for() > 1.5  # every process now waits
    started = time.monotonic()
    assert client.get_item(next(sandbox.client().list_items(limit=1))["id"])
    assert time.monotonic() - started >= 1.5


def test_server_errors_timeouts_and_refusals_are_retryable(sandbox):
    client = sandbox.client(timeout=(1, 0.3))
    sandbox.fault("/publications/*", 503, times=2)
    with pytest.raises(PreprServerError) as info:
        client.get_item("x")
    assert info.value.retryable and info.value.status == 503
    sandbox.fault("/tags", latency_ms=1000, method="GET")
    with pytest.raises(PreprConnectionError) as timeout:
        list(client.list_tags())
    assert timeout.value.retryable and timeout.value.status is None
    with pytest.raises(PreprConnectionError):
        PreprClient(f"http://127.0.0.1:{free_port()}", "t").get_item("x")
    with pytest.raises(PreprClientError) as bad:
        client.create_item({"model": {"body": "Podcast"}, "locales": ["en-GB"]})
    assert bad.value.status == 422 and not bad.value.retryable and "Podcast" in bad.value.body_excerpt


def test_no_token_in_errors_or_logs(sandbox, caplog):
    caplog.set_level(logging.DEBUG)
    secret = sandbox.token
    errors: list[PreprError] = []
    wrong = PreprClient(sandbox.url, secret[::-1])
    client = sandbox.client()
    calls = (lambda: wrong.get_item("x"), lambda: client.get_item("x"),
             lambda: PreprClient(f"http://127.0.0.1:{free_port()}", secret).get_item("x"))
    for n, call in enumerate(calls):
        if n == 1:
            sandbox.fault("/publications/*", 500, body={"echo": f"Bearer {secret}"})
        with pytest.raises(PreprError) as info:
            call()
        errors.append(info.value)
    assert errors[0].status == 401 and errors[1].status == 500 and errors[2].status is None
    for error in errors:
        text = " ".join([str(error), repr(error), repr(error.to_dict()), repr(error.__cause__)])
        assert secret not in text and secret[::-1] not in text
    assert "***" in errors[1].body_excerpt
    assert caplog.records and secret not in caplog.text
    assert secret not in repr(client)


WORKER = textwrap.dedent("""
    import sys, redis
    from prepr import PreprClient, RateLimiter
    url, token, redis_url, rate, calls = sys.argv[1:6]
    limiter = RateLimiter(redis.Redis.from_url(redis_url), float(rate), key="shared")
    client = PreprClient(url, token, rate_limiter=limiter)
    for _ in range(int(calls)):
        client.request("GET", "/tags", params={"limit": 1})
""")


@pytest.mark.slow
def test_four_processes_share_the_rate_limit(sandbox, redis_url, processes):
    rate, per_process = 20, 30
    procs = [processes.start([sys.executable, "-c", WORKER, sandbox.url, sandbox.token, redis_url, str(rate),
                              str(per_process)], {}, f"worker-{n}") for n in range(4)]
    for proc in procs:
        assert proc.wait(60) == 0, proc.log_path.read_text()
    stamps = sorted(r["timestamp"] for r in sandbox.requests(path="/tags"))
    assert len(stamps) == 4 * per_process
    busiest = max(sum(1 for t in stamps[i:] if t < start + 1.0) for i, start in enumerate(stamps))
    print(f"rate {rate}/s, 4x{per_process} calls: busiest second {busiest}, span {stamps[-1] - stamps[0]:.2f}s")
    assert busiest <= rate, f"{busiest} requests in one second"
    assert busiest >= rate * 0.7  # and the budget is actually used
    assert stamps[-1] - stamps[0] >= (len(stamps) - 1) / rate


def test_listeners_added_by_a_thread_see_only_that_threads_calls(sandbox):
    import threading

    client = sandbox.client()
    seen: dict[str, list[str]] = {}

    def work(name: str, path: str) -> None:
        records: list = []
        client.add_listener(records.append)
        for _ in range(5):
            client.request("GET", path)
        client.remove_listener(records.append)
        seen[name] = sorted({r.path for r in records})

    threads = [threading.Thread(target=work, args=(n, p)) for n, p in (("a", "/channels"), ("b", "/tags"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == {"a": ["/channels"], "b": ["/tags"]}
