"""The Flask app factory: the door Prepr knocks on.

Order of checks is fixed by the contract: size (413), content type (415), signature over the
raw bytes (401), then parse and validate (400). Nothing is parsed before it is verified, and
nothing is acknowledged before the broker holds it. The checks after the content type live in
receiver.py. The body is read under a time limit (BODY_SECONDS, enforced under the Procfile's
gevent worker, where a trickling sender holds a greenlet, not a thread): a sender that is too
slow gets 408, and broken chunked framing 400, never a 500 (docs/deploy.md).
"""
from __future__ import annotations

import contextlib
import hmac
import logging
import sys
from typing import Any, Callable, ContextManager

import redis
from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException
from werkzeug.routing import PathConverter

from prepr_automation import budget, dialect, history, store
from prepr_automation.eviction import EvictionCheck
from prepr_automation.observability import init_sentry, scrub_logs, secret_values
from prepr_automation.settings import ConfigError, Settings, load_settings

from .intake import BrokerUnavailable, Intake
from .receiver import RETRY_AFTER, Listens, Receiver, render


try:
    from gunicorn.http.errors import ParseException as _GunicornParseError
except ImportError:  # served by another WSGI server
    _GunicornParseError = ValueError  # type: ignore[assignment,misc]

BODY_SECONDS = 10.0
NOT_CONFIGURED = "not configured: set PREPR_WEBHOOK_SECRETS to the webhook's id"
log = logging.getLogger("webhooks")
_FRAMING_ERRORS = (OSError, ValueError, _GunicornParseError)  # NoMoreData is an OSError


class _AnyPath(PathConverter):
    """Everything after the prefix, also a leading, doubled or trailing `/` (event ids are Prepr's)."""

    regex = ".+"
    part_isolating = False  # it spans `/`s (werkzeug infers True from a regex without one)


class BodyTimeout(Exception):
    """The sender did not deliver the body within BODY_SECONDS."""


def _time_limit(seconds: float) -> ContextManager[Any]:
    """gevent's Timeout when serving under gevent: it interrupts a read that is trickling in, which
    a socket timeout (per recv) cannot. Without gevent the WSGI server's own limits apply."""
    if "gevent" not in sys.modules:
        return contextlib.nullcontext()
    from gevent import Timeout

    return Timeout(seconds, BodyTimeout)


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return Response(render(body), status=status, mimetype="application/json", headers=headers)


def _read_body(limit: int) -> bytes | None:
    """At most limit+1 bytes, whatever the framing (chunked bodies carry no Content-Length)."""
    length = request.content_length
    if length is not None and length > limit:
        return None
    stream = request.environ["wsgi.input"] if length is None else request.stream
    chunks, size = [], 0
    while size <= limit:
        chunk = stream.read(min(65536, limit + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return None if size > limit else b"".join(chunks)


def _is_json(mimetype: str) -> bool:
    return mimetype == "application/json" or (mimetype.startswith("application/") and mimetype.endswith("+json"))


def create_app(settings: Settings | None = None, listens: Listens | None = None,
               intake: Intake | None = None) -> Flask:
    """Build the receiver. With no settings, read the environment and exit with one line on error.

    Without PREPR_WEBHOOK_SECRETS the web still starts (SPEC §5): Prepr shows the webhook's id, the
    signing key, only after its GET has found the URL, so the app must answer before it has a key.
    Until then every POST is 503 with Retry-After (nothing unsigned is accepted; Prepr retries)."""
    if settings is None:
        try:
            settings = load_settings()
        except ConfigError as exc:
            print(f"error: {exc}", file=sys.stderr)
            sys.exit(4)  # gunicorn's "app failed to load": the arbiter stops instead of respawning
        init_sentry(settings, "web")
        for name in ("", "gunicorn.error", "gunicorn.access"):
            scrub_logs(secret_values(settings), logging.getLogger(name))
    from automation import budget as rendering

    rendering.configure(max_bytes=settings.max_rendered_bytes)  # the console's Explain renders templates
    if intake is None:
        client = store.client_for(settings, socket_timeout=0.5, role="web")
        intake = Intake(client, settings.dedupe_ttl, settings.trace_ttl, history_max_bytes=settings.history_max_bytes)
    eviction = EvictionCheck(intake.client)
    eviction.warn()  # Redis allowed to evict keys would drop queued events: say so at start
    rules_status: Callable[[], dict[str, Any]] = lambda: {"loaded": True, "source": "given"}  # noqa: E731
    from automation.live import LiveRuleSet  # the rule index: which events anything listens to

    live = LiveRuleSet(settings.rules_path)
    if listens is None:
        live.current()  # load at start, not on the first delivery
        listens, rules_status = live.listens_to, lambda: live.status
    secrets = settings.webhook_secrets
    if not secrets:
        log.warning(NOT_CONFIGURED)
    limit = settings.max_body_bytes
    admin_token = settings.admin_token
    receiver = Receiver(secrets, intake, listens)

    app = Flask("webhooks")
    app.url_map.converters["anypath"] = _AnyPath

    @app.post("/webhooks/prepr")
    def receive() -> Response:
        if not secrets:
            return _json(503, {"error": NOT_CONFIGURED}, {"Retry-After": RETRY_AFTER})
        try:
            with _time_limit(BODY_SECONDS):
                body = _read_body(limit)
        except BodyTimeout:
            return _json(408, {"error": f"body not received within {BODY_SECONDS:g} s"}, {"Connection": "close"})
        except _FRAMING_ERRORS:
            return _json(400, {"error": "malformed request body (framing)", "field": None}, {"Connection": "close"})
        if body is None:
            return _json(413, {"error": f"body larger than {limit} bytes"})
        if not _is_json(request.mimetype):
            return _json(415, {"error": "content type must be application/json"})
        return _json(*receiver.answer(body, request.headers.get("Prepr-Signature")))

    @app.get("/webhooks/prepr")
    def probe() -> Response:
        return _json(200, {"status": "ok"})

    @app.get("/health")
    def health() -> Response:
        up = intake.healthy()
        name, how = dialect.known(settings, intake.client)
        body = {"status": ("ok" if secrets else "not configured") if up else "degraded",
                "broker": "up" if up else "down", "rules": rules_status(), "redis": eviction.report(),
                "prepr": {"api_url": settings.api_url, "dialect": name, "decided_by": how}}
        if not secrets:
            body["webhook"] = NOT_CONFIGURED
        full = False
        if up:
            try:
                room = budget.room(intake.client)
                body["redis"].update(room)
                full = room["full"]
                if full:  # deliveries are answered 503 until memory frees: say so, with the figures
                    body.update(status="degraded", broker="full", message=budget.describe(room))
                body["queues"] = history.queue_depths(intake.client)
            except redis.RedisError:
                body["queues"] = None
        ok = up and not full
        return _json(200 if ok else 503, body, None if ok else {"Retry-After": RETRY_AFTER})

    @app.get("/events/<anypath:event_id>", merge_slashes=False)  # any id, `/` included, percent-encoded
    def event_trace(event_id: str) -> Response:
        if not admin_token:
            return _json(404, {"error": "not found"})
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {admin_token}".encode()):
            return _json(401, {"error": "bearer ADMIN_TOKEN required"}, {"WWW-Authenticate": "Bearer"})
        try:
            trace = intake.trace(event_id)
        except BrokerUnavailable:
            return _json(503, {"error": "store unavailable"}, {"Retry-After": RETRY_AFTER})
        if trace is None:
            return _json(404, {"error": "no trace for this event (unknown or older than 7 days)"})
        return _json(200, {"event_id": event_id, **trace})

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        return _json(exc.code or 400, {"error": exc.description or exc.name})

    @app.errorhandler(redis.RedisError)
    def store_error(exc: redis.RedisError) -> Response:
        """Any page that meets a Redis that is down or full (the console's included): 503, never 500."""
        state = "full" if isinstance(exc, redis.OutOfMemoryError) else "unavailable"
        return _json(503, {"error": f"store {state}, retry later"}, {"Retry-After": RETRY_AFTER})

    if admin_token:
        from .console import register

        register(app, settings, intake.client, live)
    return app
