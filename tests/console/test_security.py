"""The console's door, over HTTP against the real gunicorn web process: cookies, headers, CSRF,
slowed failures, nothing secret on a page; and the receiver unchanged by the console."""
from __future__ import annotations

import re

import pytest
import requests

from prepr_automation.settings import Settings
from webhooks import create_app

from .conftest import ADMIN_TOKEN, SECRET, Console


def _csrf(session: requests.Session, url: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', session.get(url, timeout=10).text).group(1)


def test_sign_in_cookie_headers_csrf_and_slowed_failures(console: Console) -> None:
    login = console.url("/login")
    anonymous = requests.get(console.url("/status"), allow_redirects=False, timeout=10)
    assert anonymous.status_code == 302 and anonymous.headers["Location"].startswith("/console/login")

    browser = requests.Session()
    token = _csrf(browser, login)
    refused = browser.post(login, data={"token": ADMIN_TOKEN}, allow_redirects=False, timeout=10)
    assert refused.status_code == 400 and "CSRF" in refused.text  # no token in the form: refused
    answer = browser.post(login, data={"token": ADMIN_TOKEN, "csrf_token": token}, allow_redirects=False, timeout=10)
    assert answer.status_code == 302
    cookie = answer.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/console" in cookie
    assert "Secure" not in cookie  # plain http here; behind https it is set (below)

    for path in ("", "/status", "/rules", "/dead-letters"):
        page = browser.get(console.url(path), timeout=20)
        assert page.status_code == 200, path
        csp = page.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in csp and "default-src 'none'" in csp
        assert page.headers["X-Content-Type-Options"] == "nosniff"
        for secret in (ADMIN_TOKEN, SECRET, console.sandbox.token):
            assert secret not in page.text, (path, "a secret on a page")
    assert browser.post(console.url("/dead-letters/replay"), timeout=10).status_code == 400  # signed in, no CSRF

    https = requests.Session()
    token = _csrf(https, login)
    behind = https.post(login, data={"token": ADMIN_TOKEN, "csrf_token": token}, allow_redirects=False,
                        headers={"X-Forwarded-Proto": "https"}, timeout=10)
    assert behind.status_code == 302 and "Secure" in behind.headers["Set-Cookie"]

    guesser = requests.Session()
    token = _csrf(guesser, login)
    codes = [guesser.post(login, data={"token": f"guess-{n}", "csrf_token": token}, timeout=10).status_code
             for n in range(7)]
    assert codes[:5] == [401] * 5 and codes[5:] == [429, 429]
    late = guesser.post(login, data={"token": ADMIN_TOKEN, "csrf_token": token}, allow_redirects=False, timeout=10)
    assert late.status_code == 429 and int(late.headers["Retry-After"]) > 0  # even the right token waits

    health = requests.get(f"{console.web}/health", timeout=10).json()
    assert set(health["queues"]) == {"celery", "bulk", "unacked"}


@pytest.mark.parametrize("admin_token", [None, "set"])
def test_the_console_exists_only_with_admin_token_and_keeps_the_fast_path(admin_token: str | None,
                                                                          redis_url: str) -> None:
    app = create_app(Settings(webhook_secrets=["k"], broker_url=redis_url, admin_token=admin_token),
                     listens=lambda event: True)
    client = app.test_client()
    assert client.get("/console/login").status_code == (200 if admin_token else 404)
    # the receiver's WSGI fast path serves only apps without request hooks: the console adds none
    assert not app.before_request_funcs and not app.after_request_funcs

