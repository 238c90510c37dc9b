"""Sign-in, CSRF and security headers for every console page.

The token is compared in constant time; failures are counted per client address (taken from
X-Forwarded-For only behind PROXY_HOPS proxies) and in all, see SignIns. A session is a signed
cookie naming a session id kept in Redis, so signing out ends it on the server too.
CSRF tokens are Flask-WTF's, checked on every POST.
"""
from __future__ import annotations

import functools
import hmac
import secrets
import time
from typing import Any, Callable

import redis
from flask import Response, current_app, make_response, redirect, render_template, request, session, url_for
from flask_wtf.csrf import validate_csrf
from itsdangerous import BadData, URLSafeTimedSerializer
from wtforms.validators import ValidationError

from prepr_automation.store import PREFIX

PER_CLIENT, IN_ALL, WINDOW = 5, 50, 600  # failures allowed per WINDOW seconds
GATE_MS = 1000  # over IN_ALL: one token check per this many ms from browsers not seen before
DEVICE_COOKIE, DEVICE_DAYS = "pa_console_device", 30
SESSION_SECONDS = 12 * 3600
EVERYONE = f"{PREFIX}console:fail:*"
GATE = f"{PREFIX}console:gate"
SESSIONS = f"{PREFIX}console:session:"
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def secured(response: Response) -> Response:
    response.headers.update(HEADERS)
    return response


def page(view: Callable[..., Any]) -> Callable[..., Response]:
    """A console view: signed in (else to the login), CSRF-checked when POST, with the headers."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Response:
        if not signed_in():  # back to the URL as sent: an event id's quoting survives the sign-in
            asked = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI") or request.full_path
            return secured(redirect(url_for("console.login", next=asked.rstrip("?"))))
        refused = check_csrf()
        if refused is not None:
            return refused
        return secured(make_response(view(*args, **kwargs)))

    return wrapper


def check_csrf() -> Response | None:
    if request.method != "POST":
        return None
    try:
        validate_csrf(request.form.get("csrf_token"))
    except ValidationError as exc:
        body = render_template("console/error.html", title="Form refused",
                               message=f"{exc} Reload the page and try again.")
        return secured(make_response(body, 400))
    return None


def _store() -> "SignIns":
    return current_app.extensions["console_sign_ins"]


def signed_in() -> bool:
    """A session cookie counts only while its id is in Redis: sign-out deletes it there."""
    data = session.get("console")
    if not isinstance(data, dict) or not isinstance(data.get("sid"), str):
        return False
    try:
        return _store().session_alive(data["sid"])
    except redis.RedisError:
        return False  # the store is down: nothing is shown (the login answers 503)


class SignIns:
    """Server-side sessions and the failure counts, in Redis (shared by every web process).

    Guessing is slowed on two levels. Per client address: PER_CLIENT failures in WINDOW seconds
    answer 429 to that address (also for the right token: the address is the guesser's). In all:
    after IN_ALL failures from everywhere, token checks from browsers that never signed in are let
    through one per GATE_MS — the rest get 429 *before* their token is looked at, so guessing from
    fresh addresses is slowed to one guess a second; a browser that signed in before (a signed
    device cookie, DEVICE_DAYS) is never held by the global limit. Nothing locks the right token
    out: docs/operations.md, "Signing in and security"."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    def _address(self) -> str:
        return f"{PREFIX}console:fail:{request.remote_addr}"

    def wait(self, known_device: bool) -> int:
        """Seconds this client must wait before its token is checked (0: check it now)."""
        mine, everyone = self._address(), EVERYONE
        counts = self.client.mget(mine, everyone)
        if counts[0] is not None and int(counts[0]) >= PER_CLIENT:
            return max(1, int(self.client.ttl(mine)))
        if known_device or counts[1] is None or int(counts[1]) < IN_ALL:
            return 0
        return 0 if self.client.set(GATE, 1, px=GATE_MS, nx=True) else 1

    def failed(self, known_device: bool) -> None:
        with self.client.pipeline() as pipe:
            for key in (self._address(),) if known_device else (self._address(), EVERYONE):
                pipe.set(key, 0, ex=WINDOW, nx=True)  # the window starts at the first failure
                pipe.incr(key)
            pipe.execute()

    def start_session(self) -> str:
        self.client.delete(self._address())
        sid = secrets.token_urlsafe(24)
        self.client.set(f"{SESSIONS}{sid}", 1, ex=SESSION_SECONDS)
        return sid

    def session_alive(self, sid: str) -> bool:
        return bool(self.client.exists(f"{SESSIONS}{sid}"))

    def end_session(self, sid: str) -> None:
        self.client.delete(f"{SESSIONS}{sid}")


def _devices() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key, salt="prepr-automation console device")


def known_device() -> bool:
    """The browser signed in with the right token within DEVICE_DAYS (a signed cookie)."""
    cookie = request.cookies.get(DEVICE_COOKIE)
    if not cookie:
        return False
    try:
        _devices().loads(cookie, max_age=DEVICE_DAYS * 86400)
    except BadData:
        return False
    return True


def remember_device(response: Response) -> None:
    response.set_cookie(DEVICE_COOKIE, _devices().dumps("device"), max_age=DEVICE_DAYS * 86400,
                        path="/console", httponly=True, samesite="Strict", secure=request.is_secure)


def token_matches(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def sign_in() -> None:
    session.clear()
    session.permanent = True
    session["console"] = {"since": time.time(), "sid": _store().start_session()}


def sign_out() -> None:
    data = session.get("console")
    if isinstance(data, dict) and isinstance(data.get("sid"), str):
        _store().end_session(data["sid"])
    session.clear()
