"""Sign-in, CSRF and security headers for every console page.

The token is compared in constant time; failures are counted per client address and in all
(a forged X-Forwarded-For cannot escape the second count) and answered 429 beyond a few.
CSRF tokens are Flask-WTF's, checked on every POST.
"""
from __future__ import annotations

import functools
import hmac
import time
from typing import Any, Callable

import redis
from flask import Response, make_response, redirect, render_template, request, session, url_for
from flask_wtf.csrf import validate_csrf
from wtforms.validators import ValidationError

from prepr_automation.store import PREFIX

PER_CLIENT, IN_ALL, WINDOW = 5, 50, 600  # failures allowed per WINDOW seconds
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


def signed_in() -> bool:
    return bool(session.get("console"))


def page(view: Callable[..., Any]) -> Callable[..., Response]:
    """A console view: signed in (else to the login), CSRF-checked when POST, with the headers."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Response:
        if not signed_in():
            return secured(redirect(url_for("console.login", next=request.full_path.rstrip("?"))))
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


class Throttle:
    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    def _keys(self) -> tuple[str, str]:
        return f"{PREFIX}console:fail:{request.remote_addr}", f"{PREFIX}console:fail:*"

    def wait(self) -> int:
        """Seconds this client must wait before trying again (0: may try now)."""
        mine, everyone = self._keys()
        counts = self.client.mget(mine, everyone)
        over = [key for key, count, limit in zip((mine, everyone), counts, (PER_CLIENT, IN_ALL))
                if count is not None and int(count) >= limit]
        return max((max(1, int(self.client.ttl(key))) for key in over), default=0)

    def failed(self) -> None:
        mine, everyone = self._keys()
        with self.client.pipeline() as pipe:
            for key in (mine, everyone):
                pipe.set(key, 0, ex=WINDOW, nx=True)  # the window starts at the first failure
                pipe.incr(key)
            pipe.execute()

    def succeeded(self) -> None:
        self.client.delete(self._keys()[0])


def token_matches(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def sign_in() -> None:
    session.clear()
    session.permanent = True
    session["console"] = {"since": time.time()}
