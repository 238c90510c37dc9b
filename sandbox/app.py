"""The sandbox's Flask app: the part of Prepr's REST and tracking APIs this service uses.

`create_app(...)` builds it; `sandbox.command.serve(...)` runs it on werkzeug's threaded server. Writes
go to SQLite under DATA_DIR and raise signed webhooks. Header `X-Sandbox-User: <person id>`
makes a write act as another user (its webhook's `performed_by` and `created_by`), so tests can
simulate an editor's change; without it, writes are the token's own user. `latency_ms` and
`rate_limit` start it in remote mode (admin.Remote): Prepr's latency and rate-limit windows.
`api` picks the dialects served (sandbox.dialects): both, or `publications` / `content_items` alone.
"""
from __future__ import annotations

import hmac
import logging
import time
from pathlib import Path
from typing import Any

from flask import Flask, Response, g, has_request_context, jsonify, request

from . import content, query, seed
from .admin import Faults, Remote, RequestLog, register_admin
from .content import Invalid
from .dialects import LABELS, BadRequest, Missing, check_api, put_locales, register_content_items, relabel, serves
from .emitter import Emitter
from .documents import Store
from .identity import register_identity

log = logging.getLogger("sandbox")
DEFAULT_LIMIT, MAX_LIMIT = 25, 100
LISTABLE = ("tags", "channels", "models", "assets", "persons")
DB_NAME = "sandbox.sqlite3"


def _error(status: int, message: str) -> Response:
    response = jsonify({"error": {"status": status, "message": message}})
    response.status_code = status
    return response


def create_app(data_dir: str | Path, token: str, *, user_id: str | None = None, webhook_url: str | None = None,
               webhook_secret: str | None = None, seed_file: str | Path | None = None,
               latency_ms: int = 0, rate_limit: str | None = None, api: str = "both") -> Flask:
    """An app over DATA_DIR/sandbox.sqlite3; seeds the demo content when the store is empty
    (or loads `seed_file`, replacing what is there). ValueError on a bad remote-mode option or `api`."""
    check_api(api)
    app = Flask("sandbox")
    store = Store(Path(data_dir) / DB_NAME)
    api_user = {"id": user_id or content.new_id("person", "api-user"), "label": "Person",
                "full_name": "API access token", "email": "api@sandbox.invalid"}
    emitter = Emitter(webhook_url, webhook_secret)
    faults, requests_log, tracked = Faults(), RequestLog(), RequestLog()
    remote = Remote(latency_ms, rate_limit)
    if seed_file:
        seed.load_file(store, seed_file, api_user)
    elif store.empty():
        seed.load(store, seed.demo(), api_user)
    app.extensions["sandbox"] = {"store": store, "emitter": emitter, "faults": faults,
                                 "requests": requests_log, "tracked": tracked, "api_user": api_user,
                                 "remote": remote, "api": api}

    # -- plumbing: auth, faults, request log -------------------------------------------------

    def given_token() -> str:
        header = request.headers.get("Authorization", "")
        return header[7:].strip() if header.lower().startswith("bearer ") else request.args.get("access_token", "")

    def authorised() -> bool:
        given = given_token()
        return bool(given) and hmac.compare_digest(given.encode(), token.encode())

    @app.before_request
    def _before() -> Response | None:
        g.arrived = request.environ.get("sandbox.arrived") or time.time()
        path = request.path
        if path == "/health":
            return None
        if not path.startswith("/_sandbox"):
            # remote mode: counted on arrival, then the latency. Not counted: the tracking API (no token)
            # and an editor's change (X-Sandbox-User: made in Prepr's app, not with the token)
            counted = given_token() and not request.headers.get("X-Sandbox-User")
            admitted, g.rate_headers = remote.admit(given_token()) if counted else (True, {})
            remote.delay()
            if not admitted:
                return _error(429, "rate limit exceeded")
            fault = faults.take(request.method, path)
            if fault is not None:
                if fault.latency_ms:
                    time.sleep(fault.latency_ms / 1000)
                if fault.status is not None:
                    response = jsonify(fault.body if fault.body is not None else
                                       {"error": {"status": fault.status, "message": "injected fault"}})
                    response.status_code = fault.status
                    if fault.retry_after is not None:
                        response.headers["Retry-After"] = f"{fault.retry_after:g}"
                    if fault.status == 429:
                        response.headers["X-Prepr-RateLimit-Limit"] = "35"
                        response.headers["X-Prepr-RateLimit-Remaining"] = "0"
                    response.headers.update(fault.headers)
                    return response
        if path.startswith("/events") and request.method == "POST":
            return None  # the tracking API authenticates customers, not the REST token
        if not authorised():
            return _error(401, "missing or invalid access token")
        return None

    @app.after_request
    def _after(response: Response) -> Response:
        for name, value in g.get("rate_headers", {}).items():
            response.headers.setdefault(name, value)
        if request.path != "/health" and not request.path.startswith("/_sandbox"):
            requests_log.add({"method": request.method, "path": request.path,
                              "query": request.query_string.decode(errors="replace"),
                              "status": response.status_code, "timestamp": g.get("arrived", time.time()),
                              "user": request.headers.get("X-Sandbox-User") or api_user["id"]})
        return response

    def acting_user() -> dict[str, Any]:
        wanted = request.headers.get("X-Sandbox-User")
        if not wanted:
            return {k: api_user[k] for k in ("id", "label", "full_name", "email")}
        person = store.get("persons", wanted) or {"id": wanted, "label": "Person"}
        return {k: person[k] for k in ("id", "label", "full_name", "email") if k in person}

    def body() -> dict[str, Any]:
        data = request.get_json(silent=True)
        if data is None and request.get_data():
            raise Invalid("the body is not valid JSON")
        if data is not None and not isinstance(data, dict):
            raise Invalid("the body must be a JSON object")
        return data or {}

    def page(items: list[dict[str, Any]], fields: str | None = None, label: str | None = None) -> Response:
        try:
            skip = int(request.args.get("skip", 0))
            limit = int(request.args.get("limit", DEFAULT_LIMIT))
        except ValueError:
            return _error(400, "skip and limit must be integers")
        if skip < 0 or limit < 1:
            return _error(400, "skip must be >= 0 and limit >= 1")
        limit = min(limit, MAX_LIMIT)
        chunk = [content.project(i, fields) for i in items[skip:skip + limit]]
        chunk = [relabel(i, label) for i in chunk] if label else chunk
        return jsonify({"items": chunk, "total": len(items), "skip": skip, "limit": limit})

    def emit(event: str, pub: dict[str, Any], user: dict[str, Any]) -> None:
        """The label says which dialect made the change: content_items when the request did, or
        when it is the only one served; the seeds' Publication otherwise."""
        via_items = has_request_context() and request.path.startswith("/content_items")
        label = LABELS["content_items" if api == "content_items" or via_items else "publications"]
        emitter.emit(event, content.slim(pub, label), user["id"])

    def status_events(before: str | None, after: str | None) -> list[str]:
        if after == "published" and before != "published":
            return ["content_item.published"]
        if before == "published" and after != "published":
            return ["content_item.unpublished"]
        return []

    def matching() -> list[dict[str, Any]]:
        conditions = query.parse(request.args.items(multi=True))
        key, reverse = query.sort_key(request.args.get("sort"))
        pubs = [p for p in store.all("publications") if query.matches(p, conditions)]
        return sorted(pubs, key=key, reverse=reverse)

    def update(pub_id: str, fragment: dict[str, Any], user: dict[str, Any],
               replacing: list[str] | None = None) -> dict[str, Any] | None:
        with store.lock:
            old = store.get("publications", pub_id)
            if old is None:
                return None
            new = content.apply(store, old, fragment, creating=False, replacing=replacing)
            new["changed_on"] = content.now_iso()
            store.put("publications", new)
        emit("content_item.changed", new, user)
        for event in status_events(old.get("status"), new.get("status")):
            emit(event, new, user)
        return new

    @app.errorhandler(Invalid)
    def _invalid(exc: Invalid) -> Response:
        return _error(422, str(exc))

    @app.errorhandler(query.BadFilter)
    @app.errorhandler(BadRequest)
    def _bad_request(exc: ValueError) -> Response:
        return _error(400, str(exc))

    @app.errorhandler(Missing)
    def _missing(exc: Missing) -> Response:
        return _error(404, str(exc))

    @app.errorhandler(404)
    def _not_found(_exc: Exception) -> Response:
        return _error(404, "not found")

    @app.errorhandler(405)
    def _not_allowed(_exc: Exception) -> Response:
        return _error(405, "method not allowed")

    # -- API --------------------------------------------------------------------------------

    @app.get("/health")
    def health() -> Response:
        return jsonify({"status": "ok", "api": api, "publications": len(store.docs["publications"]),
                        "webhooks_pending": emitter.pending()})

    for dialect in (d for d in ("publications", "content_items") if serves(api, d)):
        prefix, label = f"/{dialect}", LABELS[dialect]
        noun = "publication" if dialect == "publications" else "content item"

        def list_publications(label: str = label) -> Response:
            return page(matching(), request.args.get("fields"), label=label)

        def create_publication(label: str = label) -> Response:
            user = acting_user()
            with store.lock:
                doc = content.apply(store, content.new_publication(user), body(), creating=True)
                store.put("publications", doc)
            emit("content_item.created", doc, user)
            for event in status_events(None, doc.get("status")):
                emit(event, doc, user)
            return jsonify(relabel(doc, label)), 201

        def get_publication(pub_id: str, label: str = label, noun: str = noun) -> Response:
            doc = store.get("publications", pub_id)
            if doc is None:
                return _error(404, f"{noun} {pub_id} not found")
            return jsonify(relabel(content.project(doc, request.args.get("fields")), label))

        def put_publication(pub_id: str, dialect: str = dialect, label: str = label, noun: str = noun) -> Response:
            """publications: merge; content_items: `locales` required, each named locale replaced."""
            data = body()
            replacing = put_locales(data) if dialect == "content_items" else None
            doc = update(pub_id, data, acting_user(), replacing)
            return jsonify(relabel(doc, label)) if doc is not None else _error(404, f"{noun} {pub_id} not found")

        def delete_publication(pub_id: str, noun: str = noun) -> Response:
            doc = store.get("publications", pub_id)
            if doc is None or not store.delete("publications", pub_id):
                return _error(404, f"{noun} {pub_id} not found")
            emit("content_item.deleted", doc, acting_user())
            return Response(status=204)

        def bulk_put() -> Response:
            fragment, user = body(), acting_user()
            ids = [p["id"] for p in matching()]
            done = [pid for pid in ids if update(pid, fragment, user) is not None]
            return jsonify({"total": len(done), "items": [{"id": pid} for pid in done]})

        def bulk_delete() -> Response:
            user, done = acting_user(), []
            for pub in matching():
                if store.delete("publications", pub["id"]):
                    emit("content_item.deleted", pub, user)
                    done.append(pub["id"])
            return jsonify({"total": len(done), "items": [{"id": pid} for pid in done]})

        def bulk_webhooks() -> Response:
            event = body().get("event")
            if not isinstance(event, str) or not event:
                raise Invalid("event is required")
            user, pubs = acting_user(), matching()
            for pub in pubs:
                emit(event, pub, user)
            return jsonify({"total": len(pubs), "items": [{"id": p["id"]} for p in pubs]})

        name = dialect
        app.add_url_rule(prefix, f"{name}_list", list_publications, methods=["GET"])
        app.add_url_rule(prefix, f"{name}_create", create_publication, methods=["POST"])
        app.add_url_rule(f"{prefix}/<pub_id>", f"{name}_get", get_publication, methods=["GET"])
        app.add_url_rule(f"{prefix}/<pub_id>", f"{name}_put", put_publication, methods=["PUT"])
        app.add_url_rule(f"{prefix}/<pub_id>", f"{name}_delete", delete_publication, methods=["DELETE"])
        if dialect == "publications":  # the Mutation API has no bulk endpoints
            app.add_url_rule(f"{prefix}/bulk/put", f"{name}_bulk_put", bulk_put, methods=["POST"])
            app.add_url_rule(f"{prefix}/bulk/delete", f"{name}_bulk_delete", bulk_delete, methods=["POST"])
            app.add_url_rule(f"{prefix}/bulk/webhooks", f"{name}_bulk_webhooks", bulk_webhooks, methods=["POST"])

    if serves(api, "content_items"):
        register_content_items(app, store, body=body, acting_user=acting_user, emit=emit, page=page)

    for kind in (k for k in LISTABLE if k != "persons" or serves(api, "publications")):
        def list_kind(kind: str = kind) -> Response:
            return page(store.all(kind), request.args.get("fields"))

        def get_kind(doc_id: str, kind: str = kind) -> Response:
            doc = store.get(kind, doc_id)
            if doc is None:
                return _error(404, f"{kind[:-1]} {doc_id} not found")
            return jsonify(content.project(doc, request.args.get("fields")))

        app.add_url_rule(f"/{kind}", f"{kind}_list", list_kind, methods=["GET"])
        app.add_url_rule(f"/{kind}/<doc_id>", f"{kind}_get", get_kind, methods=["GET"])

    @app.post("/tags")
    def create_tag() -> Response:
        name = body().get("body")
        if not isinstance(name, str) or not name.strip():
            raise Invalid("body is required")
        before = len(store.docs["tags"])
        tag = content.find_or_create_tag(store, {"body": name})
        return jsonify(tag), (201 if len(store.docs["tags"]) > before else 200)

    @app.post("/events")
    def track() -> Response:
        data = request.get_json(silent=True)
        if not isinstance(data, dict):
            return _error(400, "the body must be a JSON object")
        tracked.add({"method": "POST", "path": "/events", "timestamp": time.time(), "body": data,
                     "headers": {k: v for k, v in request.headers.items() if k.lower().startswith("prepr-")}})
        return Response(status=202)

    register_admin(app)
    register_identity(app)
    return app
