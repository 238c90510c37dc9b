"""Turning API write bodies into stored Prepr-shaped documents, as Prepr does.

Bodies follow Prepr's REST shape: `model` by `{id}` or `{body}` (name), `items.{locale}.{api_id}`
with text as `{body}` (a bare string is accepted), tags as `{items: [{id} | {body} | {slug}]}`
(unknown bodies create the tag), assets by `{id}`, channels as `[{id} | {slug} | {name}]`,
`assigned_to` as `{id}`. PUT merges: `items` per locale per field, `publish_on` / `slug` per
locale; every other given key replaces the old value. The content_items dialect's PUT instead
replaces each locale it names whole (`replacing`). Values may also come back in the shape a GET
returns (`label`, a tag's or asset's full document): a client can send back what it read.
Unknown references answer 422.
"""
from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any

from .query import slugify
from .documents import Store

NAMESPACE = uuid.UUID("6c1f9f4e-3b7a-4f0e-9d43-2a1c6a0d5e11")
STATUSES = {"draft", "review", "published", "unpublished", "archived"}


class Invalid(ValueError):
    """The body cannot be applied: Prepr answers 422 with this message."""


def now_iso() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


def new_id(*parts: str) -> str:
    """Random id, or a stable one derived from `parts` (the demo seed is deterministic)."""
    return str(uuid.uuid5(NAMESPACE, "/".join(parts))) if parts else str(uuid.uuid4())


def tag_doc(body: str, id_: str | None = None, created_on: str | None = None) -> dict[str, Any]:
    stamp = created_on or now_iso()
    return {"id": id_ or new_id(), "created_on": stamp, "changed_on": stamp, "label": "Tag",
            "body": body, "slug": slugify(body)}


def find_or_create_tag(store: Store, ref: dict[str, Any] | str, *, create: bool = True) -> dict[str, Any]:
    """A tag by id, slug or body (case-insensitive); an unknown body creates it, as in Prepr."""
    if isinstance(ref, str):
        ref = {"body": ref}
    with store.lock:
        if ref.get("id"):
            tag = store.get("tags", ref["id"])
            if tag is None:
                raise Invalid(f"tag {ref['id']} does not exist")
            return tag
        body = ref.get("body") or ref.get("slug")
        if not isinstance(body, str) or not body.strip():
            raise Invalid("a tag needs an id, body or slug")
        for tag in store.iter_raw("tags"):
            if tag["body"].casefold() == body.strip().casefold() or tag["slug"] == slugify(body):
                return dict(tag)
        if not create:
            raise Invalid(f"tag {body!r} does not exist")
        return store.put("tags", tag_doc(body.strip()))


def _channel(store: Store, ref: Any) -> dict[str, Any]:
    key = ref if isinstance(ref, str) else (ref or {}).get("id") or ref.get("slug") or ref.get("name")
    if not key:
        raise Invalid("a channel needs an id, slug or name")
    for channel in store.iter_raw("channels"):
        if key in (channel["id"], channel["slug"]) or str(key).casefold() == channel["name"].casefold():
            return dict(channel)
    raise Invalid(f"channel {key!r} does not exist")


def _model(store: Store, ref: Any) -> dict[str, Any]:
    key = ref if isinstance(ref, str) else (ref or {}).get("id") or (ref or {}).get("body")
    for model in store.iter_raw("models"):
        if key == model["id"] or str(key).casefold() == model["body"].casefold():
            return {"id": model["id"], "label": "Model", "body": model["body"]}
    raise Invalid(f"model {key!r} does not exist")


def _person(store: Store, ref: Any) -> dict[str, Any] | None:
    if ref is None:
        return None
    key = ref if isinstance(ref, str) else (ref or {}).get("id")
    person = store.get("persons", key) if key else None
    if person is None:
        raise Invalid(f"person {key!r} does not exist")
    return {k: person[k] for k in ("id", "label", "full_name", "email") if k in person}


def _element(store: Store, element: Any) -> dict[str, Any]:
    """One entry of a list field: a tag, an asset or a linked publication."""
    if not isinstance(element, (str, dict)):
        raise Invalid("an entry of a list field must be an object ({id} or {body}) or a tag's name")
    if isinstance(element, str) or not element.get("id"):
        return find_or_create_tag(store, element)
    for kind in ("tags", "assets", "publications"):
        found = store.get(kind, element["id"])
        if found is not None:
            if kind == "publications":
                return {"id": found["id"], "label": "Publication", "model": found.get("model")}
            return found
    raise Invalid(f"no tag, asset or publication with id {element['id']}")


def _field(store: Store, value: Any) -> Any:
    if isinstance(value, str):
        return {"label": "Text", "body": value}
    if isinstance(value, dict) and isinstance(value.get("items"), list):
        elements = [_element(store, e) for e in value["items"]]
        label = elements[0]["label"] if elements else value.get("label", "Tag")
        return {**value, "label": label, "items": elements}
    if isinstance(value, dict) and "body" in value:
        return {"label": "Text", **value}
    return value


NONE = type(None)
SHAPES: dict[str, tuple[type, ...]] = {
    "model": (str, dict), "assigned_to": (str, dict, NONE), "status": (str,), "channels": (list, NONE),
    "containers": (list, NONE), "locales": (list, NONE), "slug": (dict, str, NONE),
    "publish_on": (dict, str, int, float, NONE), "expire_on": (dict, str, int, float, NONE)}


def _check_shapes(body: dict[str, Any]) -> None:
    """Prepr answers a value of the wrong JSON type with 422, so the sandbox never fails on one."""
    for key, types in SHAPES.items():
        if key in body and not isinstance(body[key], types):
            raise Invalid(f"{key} has the wrong type ({type(body[key]).__name__})")
    if not all(isinstance(loc, str) for loc in body.get("locales") or []):
        raise Invalid("locales must be locale codes")
    for key in ("channels", "containers"):
        for ref in body.get(key) or []:
            if not (isinstance(ref, str) or isinstance(ref, dict) and (key == "channels" or "id" in ref)):
                raise Invalid(f"an entry of {key} must be an object with an id, or an id")


def _locale_items(body: dict[str, Any], replacing: list[str] | None) -> list[tuple[str, Any]]:
    """(locale, fields) pairs to write: every locale of `items` when merging; when replacing, each
    named locale (one not in `items` becomes empty) and nothing else, as Prepr ignores the rest."""
    items = body.get("items") or {}
    if not isinstance(items, dict):
        raise Invalid("items must be an object of locales")
    if replacing is None:
        return list(items.items())
    return [(locale, items.get(locale) or {}) for locale in replacing]


def apply(store: Store, doc: dict[str, Any], body: dict[str, Any], *, creating: bool,
          replacing: list[str] | None = None) -> dict[str, Any]:
    """Merge a POST/PUT body into `doc` (a copy is returned); raises Invalid. With `replacing`
    (locale codes), those locales' content is replaced by the body's instead of merged."""
    if not isinstance(body, dict):
        raise Invalid("the body must be a JSON object")
    _check_shapes(body)
    out = dict(doc)
    with store.lock:
        if "model" in body or creating:
            if "model" not in body:
                raise Invalid("model is required")
            out["model"] = _model(store, body["model"])
        for locale, fields in _locale_items(body, replacing):
            if not isinstance(fields, dict):
                raise Invalid(f"items.{locale} must be an object")
            merged = {} if replacing is not None else dict((out.get("items") or {}).get(locale) or {})
            for api_id, value in fields.items():
                if value is None:
                    merged.pop(api_id, None)
                else:
                    merged[api_id] = _field(store, value)
            out["items"] = {**(out.get("items") or {}), locale: merged}
        if "channels" in body:
            out["channels"] = [_channel(store, c) for c in body["channels"] or []]
        if "containers" in body:
            out["containers"] = [{"id": c["id"] if isinstance(c, dict) else c, "label": "Container",
                                  "body": (c.get("body") if isinstance(c, dict) else None) or ""}
                                 for c in body["containers"] or []]
        if "assigned_to" in body:
            out["assigned_to"] = _person(store, body["assigned_to"])
    if "status" in body:
        if body["status"] not in STATUSES:
            raise Invalid(f"status must be one of {sorted(STATUSES)}")
        out["status"] = body["status"]
    for per_locale in ("publish_on", "expire_on", "slug"):
        if per_locale in body:
            value = body[per_locale]
            if isinstance(value, dict):
                out[per_locale] = {**(out.get(per_locale) or {}), **value}
            else:
                out[per_locale] = {locale: value for locale in (out.get("items") or {})}
    locales = list(dict.fromkeys([*(out.get("locales") or []), *(body.get("locales") or []),
                                  *(out.get("items") or {}).keys()]))
    if creating and not locales:
        raise Invalid("locales (or items per locale) are required")
    out["locales"] = locales
    for locale in locales:
        title = ((out.get("items") or {}).get(locale) or {}).get("title") or {}
        slugs = out.setdefault("slug", {})
        if locale not in slugs and title.get("body"):
            slugs[locale] = slugify(title["body"])
    out.setdefault("status", "draft")
    out.setdefault("channels", [])
    out.setdefault("containers", [])
    out.setdefault("publish_on", {})
    return out


def new_publication(user: dict[str, Any] | None, stamp: str | None = None, id_: str | None = None) -> dict[str, Any]:
    stamp = stamp or now_iso()
    return {"id": id_ or new_id(), "created_on": stamp, "changed_on": stamp, "label": "Publication",
            "created_by": user, "assigned_to": None}


def slim(pub: dict[str, Any], label: str = "Publication") -> dict[str, Any]:
    """The webhook payload newer Prepr deliveries carry: ids and timestamps, no content."""
    model = pub.get("model") or {}
    return {"id": pub["id"], "created_on": pub.get("created_on"), "changed_on": pub.get("changed_on"),
            "label": label, "model": {"id": model.get("id"), "body": model.get("body")},
            "locales": pub.get("locales", []), "status": pub.get("status"),
            "publish_on": pub.get("publish_on") or {}}


def project(doc: dict[str, Any], fields: str | None) -> dict[str, Any]:
    """Apply Prepr's `fields` argument: `a,b{c,d}`; id, timestamps and label always come back."""
    if not fields:
        return doc
    tree = parse_fields(fields)
    out = {k: doc[k] for k in ("id", "created_on", "changed_on", "label") if k in doc}
    for name, sub in tree.items():
        if name not in doc:
            continue
        value = doc[name]
        if name == "items" and sub and isinstance(value, dict):
            value = {loc: {k: v for k, v in (f or {}).items() if k in sub} for loc, f in value.items()}
        out[name] = value
    return out


def parse_fields(text: str) -> dict[str, dict]:
    """`a,b{c,d{e}}` → {"a": {}, "b": {"c": {}, "d": {"e": {}}}}."""
    def parse(i: int) -> tuple[dict[str, dict], int]:
        tree: dict[str, dict] = {}
        name = ""
        while i < len(text):
            ch = text[i]
            if ch == "{":
                tree[name.strip()], i = parse(i + 1)
                name = ""
            elif ch == "}":
                break
            elif ch == ",":
                if name.strip():
                    tree.setdefault(name.strip(), {})
                name = ""
            else:
                name += ch
            i += 1
        if name.strip():
            tree.setdefault(name.strip(), {})
        return tree, i
    return parse(0)[0]
