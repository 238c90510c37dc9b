"""The console's sign-in under attack, over the Flask test client and real Redis: forwarded
addresses believed only behind PROXY_HOPS proxies, a global limit that slows guessing without
locking the right token out, and sign-out that ends the session on the server."""
from __future__ import annotations

import re

import pytest
import redis
from flask.testing import FlaskClient

from prepr_automation.settings import Settings, load_settings
from webhooks import create_app
from webhooks.console import auth

TOKEN = "signin-test-admin-token-5b1d"


def _client(redis_url: str, proxy_hops: int = 0) -> FlaskClient:
    settings = Settings(webhook_secrets=("k",), broker_url=redis_url, admin_token=TOKEN, proxy_hops=proxy_hops)
    return create_app(settings, listens=lambda event: True).test_client()


def _csrf(client: FlaskClient) -> str:
    page = client.get("/console/login").get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def _try(client: FlaskClient, token: str, address: str = "203.0.113.9", forwarded: str | None = None) -> int:
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    return client.post("/console/login", data={"token": token, "csrf_token": _csrf(client)}, headers=headers,
                       environ_base={"REMOTE_ADDR": address}).status_code


def test_a_fresh_forwarded_for_per_guess_does_not_escape_the_limit_without_a_proxy(redis_url: str) -> None:
    client = _client(redis_url)
    codes = [_try(client, f"guess-{n}", forwarded=f"198.51.100.{n}") for n in range(50)]
    assert codes[:5] == [401] * 5 and set(codes[5:]) == {429}


def test_behind_one_proxy_the_forwarded_address_counts(redis_url: str) -> None:
    client = _client(redis_url, proxy_hops=1)
    codes = [_try(client, f"guess-{n}", forwarded=f"198.51.100.{n % 2}") for n in range(12)]
    assert codes[:10] == [401] * 10 and codes[10:] == [429, 429]  # 5 per forwarded address
    answer = client.post("/console/login", data={"token": TOKEN, "csrf_token": _csrf(client)},
                         headers={"X-Forwarded-For": "198.51.100.7", "X-Forwarded-Proto": "https"})
    assert answer.status_code == 302 and "Secure" in answer.headers["Set-Cookie"]


def test_fifty_failures_from_many_addresses_do_not_lock_out_the_right_token(redis_url: str) -> None:
    client = _client(redis_url)
    codes = [_try(client, f"guess-{n}", address=f"192.0.2.{n}") for n in range(60)]
    assert codes.count(401) >= 50 and set(codes) <= {401, 429}
    # over the global limit, token checks from unknown browsers are let through one a second
    redis.Redis.from_url(redis_url).delete(auth.GATE)
    fresh = _client(redis_url)
    assert _try(fresh, TOKEN, address="192.0.2.200") == 302  # the right token, from anywhere
    fast = [_try(_client(redis_url), f"again-{n}", address=f"192.0.2.{100 + n}") for n in range(5)]
    assert fast.count(429) >= 4  # guesses from fresh addresses are held back: at most one a second


def test_a_browser_that_signed_in_before_is_not_held_by_the_global_limit(redis_url: str) -> None:
    client = _client(redis_url)
    assert _try(client, TOKEN) == 302  # the device cookie is set
    client.post("/console/logout", data={"csrf_token": _csrf(client)})
    for n in range(60):
        _try(_client(redis_url), f"guess-{n}", address=f"192.0.2.{n}")
    assert _try(client, TOKEN, address="192.0.2.250") == 302


def test_sign_out_revokes_the_session_on_the_server(redis_url: str) -> None:
    client = _client(redis_url)
    assert _try(client, TOKEN) == 302
    cookie = client.get_cookie("pa_console", path="/console")
    assert cookie is not None and client.get("/console/status").status_code == 200
    assert client.post("/console/logout", data={"csrf_token": _csrf(client)}).status_code == 302
    replay = _client(redis_url)
    replay.set_cookie("pa_console", cookie.value, path="/console")
    answer = replay.get("/console/status")
    assert answer.status_code == 302 and answer.headers["Location"].startswith("/console/login")


def test_the_store_down_at_sign_in_is_503_not_500() -> None:
    client = _client("redis://127.0.0.1:1/0")
    page = client.get("/console/login")
    assert page.status_code == 200
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True)).group(1)
    answer = client.post("/console/login", data={"token": TOKEN, "csrf_token": token})
    assert answer.status_code == 503 and answer.headers["Retry-After"]


@pytest.mark.parametrize("env, hops", [({}, 0), ({"DYNO": "web.1"}, 1), ({"DYNO": "web.1", "PROXY_HOPS": "2"}, 2),
                                       ({"PROXY_HOPS": "0", "DYNO": "web.1"}, 0)])
def test_proxy_hops_default_to_heroku_s_router(env: dict, hops: int) -> None:
    assert load_settings(env).proxy_hops == hops
