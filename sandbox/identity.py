"""Who wrote an item: `updated_by` on every item the sandbox changes, as Prepr records it.

Prepr documents no call that names the user an access token is bound to; what it does return is
`created_by` and `updated_by` on a content item (`fields=created_by,updated_by`), the user who
created and who last changed it. `prepr-automation doctor` learns the token's user from the
`updated_by` of the newest item the worker wrote, so the sandbox records it the same way: after
each successful write of an item (PUT, POST, publish/unpublish PATCH), the acting user (the token's,
or the editor named by `X-Sandbox-User`) becomes the item's `updated_by`. Kept apart from app.py's
routes on purpose: one after-request hook, wired with one line.
"""
from __future__ import annotations

import re
from typing import Any

from flask import Flask, Response, request

ITEM_WRITE = re.compile(r"^/(?:publications|content_items)/([^/]+)(?:/[^/]+/(?:publish|unpublish))?$")
USER_KEYS = ("id", "label", "full_name", "email")


def _acting_user(app: Flask) -> dict[str, Any]:
    state = app.extensions["sandbox"]
    wanted = request.headers.get("X-Sandbox-User")
    if not wanted:
        return {k: state["api_user"][k] for k in USER_KEYS if k in state["api_user"]}
    person = state["store"].get("persons", wanted) or {"id": wanted, "label": "Person"}
    return {k: person[k] for k in USER_KEYS if k in person}


def _written_id(response: Response) -> str | None:
    """The id of the item this request wrote, or None (not an item write, or it failed)."""
    if not 200 <= response.status_code < 300 or request.method not in ("PUT", "POST", "PATCH"):
        return None
    if request.method == "POST" and request.path in ("/publications", "/content_items"):
        body = response.get_json(silent=True)
        return body.get("id") if isinstance(body, dict) else None
    match = ITEM_WRITE.match(request.path)
    if match is None or match.group(1) == "bulk":
        return None
    return match.group(1)


def register_identity(app: Flask) -> None:
    """Record `updated_by` on each item a request wrote (read back with `fields=updated_by`)."""

    @app.after_request
    def _record_writer(response: Response) -> Response:
        item_id = _written_id(response)
        if item_id is None:
            return response
        store = app.extensions["sandbox"]["store"]
        with store.lock:
            doc = store.get("publications", item_id)
            if doc is not None:
                doc["updated_by"] = _acting_user(app)
                store.put("publications", doc)
        return response
