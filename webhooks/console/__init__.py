"""The operators' console (SPEC §5a): server-rendered pages under /console, on when ADMIN_TOKEN is set.

Registered by create_app. It adds no before/after-request hooks to the app (the receiver's WSGI
fast path steps aside for apps that have them): sign-in, CSRF and security headers are applied
by the `page` decorator of each console view instead.
"""
from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta
from typing import Any
from urllib.parse import quote, unquote

import redis
from flask import Flask, request
from flask.sessions import SecureCookieSessionInterface
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import BaseConverter

from automation.live import LiveRuleSet
from prepr_automation.settings import Settings

from .auth import SignIns
from .views import make_blueprint


class _Sessions(SecureCookieSessionInterface):
    """The cookie is `Secure` exactly when the request came over https (behind the proxy, too)."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return request.is_secure


def session_key(admin_token: str) -> bytes:
    """Derived from ADMIN_TOKEN: rotating the token signs every session out; nothing else to set."""
    return hmac.new(admin_token.encode(), b"prepr-automation console session", hashlib.sha256).digest()


class EventIdConverter(BaseConverter):
    """An event id with any character (`/`, `?`, `#`, `%`, spaces) as one path segment.

    Servers decode %2F to `/` before routing, so links quote the id twice: the server's decoding
    leaves it quoted once, with no `/`, and this converter unquotes it. A plain id is unchanged."""

    def to_python(self, value: str) -> str:
        return unquote(value)

    def to_url(self, value: Any) -> str:
        return quote(quote(str(value), safe=""), safe="")


def register(app: Flask, settings: Settings, client: redis.Redis, live: LiveRuleSet) -> None:
    app.secret_key = session_key(settings.admin_token or "")
    app.config.update(SESSION_COOKIE_NAME="pa_console", SESSION_COOKIE_PATH="/console",
                      SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Strict",
                      PERMANENT_SESSION_LIFETIME=timedelta(hours=12), WTF_CSRF_TIME_LIMIT=12 * 3600)
    app.session_interface = _Sessions()
    app.extensions["console_sign_ins"] = SignIns(client)
    # Only the PROXY_HOPS proxies in front (Heroku's router: 1) are believed about the client's
    # address and scheme; with none, X-Forwarded-* are ignored and cannot fake a fresh address.
    if settings.proxy_hops:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.proxy_hops,  # type: ignore[method-assign]
                                x_proto=settings.proxy_hops)
    app.url_map.converters["eventid"] = EventIdConverter
    app.register_blueprint(make_blueprint(settings, client, live))
