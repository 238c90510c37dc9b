"""The two dialects of Prepr's REST API the sandbox speaks (SPEC §9), and what only the newer one has.

`publications` is the API the seed documents describe: `/publications`, a PUT that merges, the
three bulk endpoints, `/persons`. `content_items` is the Mutation API every environment created
today speaks: `/content_items`, a PUT that must name `locales` and replaces each named locale's
content whole, `PATCH /content_items/{id}/{locale}/publish|unpublish`, no bulk endpoints, and
customers instead of persons. `--api both` (the default) serves the two side by side over one
store, so the service's dialect detection and either client can be tested against one sandbox.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Callable

from flask import Flask, Response, jsonify, request

from . import content
from .content import Invalid
from .documents import Store

API_CHOICES = ("both", "publications", "content_items")
LABELS = {"publications": "Publication", "content_items": "ContentItem"}
CUSTOMER = "Customer"


class BadRequest(ValueError):
    """The request lacks what the dialect requires (Prepr answers 400)."""


class Missing(LookupError):
    """No such item (404); the message names it."""


def check_api(api: str) -> str:
    if api not in API_CHOICES:
        raise ValueError(f"api must be one of {', '.join(API_CHOICES)}, not {api!r}")
    return api


def serves(api: str, dialect: str) -> bool:
    return api in ("both", dialect)


def relabel(doc: dict[str, Any], label: str) -> dict[str, Any]:
    """The document as one dialect shows it: the store keeps one label, each dialect its own."""
    return {**doc, "label": label}


def put_locales(body: Any) -> list[str]:
    """The `locales` a content_items PUT must carry (the locales whose content it replaces)."""
    locales = body.get("locales") if isinstance(body, dict) else None
    if not (isinstance(locales, list) and locales and all(isinstance(loc, str) and loc for loc in locales)):
        raise BadRequest("locales is required: a non-empty list of the locale codes this PUT replaces")
    return list(dict.fromkeys(locales))


def _moment(value: Any) -> str:
    """`publish_on` of a publish PATCH (unix seconds) as the ISO string the store keeps; now if absent."""
    if value is None:
        return content.now_iso()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise Invalid("publish_on must be a time in unix seconds")
    try:
        return datetime.fromtimestamp(value, timezone.utc).replace(microsecond=0).isoformat()
    except (OverflowError, OSError, ValueError):
        raise Invalid("publish_on is out of range") from None


def register_content_items(app: Flask, store: Store, *, body: Callable[[], dict[str, Any]],
                           acting_user: Callable[[], dict[str, Any]],
                           emit: Callable[[str, dict[str, Any], dict[str, Any]], None],
                           page: Callable[..., Response]) -> None:
    """The routes only the content_items dialect has: publish / unpublish per locale, customers."""

    def set_status(item_id: str, locale: str, publish: bool) -> Response:
        data, user = body(), acting_user()
        when = _moment(data.get("publish_on")) if publish else None
        with store.lock:
            doc = store.get("publications", item_id)
            if doc is None:
                raise Missing(f"content item {item_id} not found")
            if locale not in (doc.get("locales") or []):
                raise Invalid(f"content item {item_id} has no locale {locale!r} (it has {doc.get('locales')})")
            publish_on = dict(doc.get("publish_on") or {})
            if publish:
                publish_on[locale] = when
            else:
                publish_on.pop(locale, None)
            doc.update(status="published" if publish else "unpublished", publish_on=publish_on,
                       changed_on=content.now_iso())
            store.put("publications", doc)
        emit("content_item.published" if publish else "content_item.unpublished", doc, user)
        return jsonify(relabel(doc, LABELS["content_items"]))

    def publish(item_id: str, locale: str) -> Response:
        return set_status(item_id, locale, True)

    def unpublish(item_id: str, locale: str) -> Response:
        return set_status(item_id, locale, False)

    def list_customers() -> Response:
        return page(store.all("persons"), request.args.get("fields"), label=CUSTOMER)

    def get_customer(customer_id: str) -> Response:
        person = store.get("persons", customer_id)
        if person is None:
            raise Missing(f"customer {customer_id} not found")
        return jsonify(relabel(content.project(person, request.args.get("fields")), CUSTOMER))

    app.add_url_rule("/content_items/<item_id>/<locale>/publish", "content_items_publish", publish,
                     methods=["PATCH"])
    app.add_url_rule("/content_items/<item_id>/<locale>/unpublish", "content_items_unpublish", unpublish,
                     methods=["PATCH"])
    app.add_url_rule("/customers", "customers_list", list_customers, methods=["GET"])
    app.add_url_rule("/customers/<customer_id>", "customers_get", get_customer, methods=["GET"])
