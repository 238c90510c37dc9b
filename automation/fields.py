"""Condition fields: Prepr's publication filter names, resource paths and envelope paths.

`resolve_field(name)` gives a Field whose `get(item, envelope)` returns the list of candidate
values (a publication has tags in each locale, a publish date per locale...), whose `kind` tells
operators how to compare, and whose `needs(kind)` names the top-level resource fields it reads —
the fetch planner asks Prepr for exactly those.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from prepr.filters import FIELDS as PREPR_FIELDS  # the one list of Prepr's publication filters

_LOCALE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
_PATH_SEGMENT = re.compile(r"^([A-Za-z0-9_\-]+|\*)$")
REF_KEYS = ("id", "slug", "body", "name", "email")


@dataclass(frozen=True)
class Field:
    name: str
    kind: str  # "ref" (id/slug/name objects), "text", "date", "value"
    get: Callable[[dict, dict], list]
    reads: Callable[[str], frozenset[str]]  # resource kind -> top-level keys read

    def needs(self, resource: str) -> frozenset[str]:
        return self.reads(resource)


def is_localized(value: Any) -> bool:
    return isinstance(value, dict) and bool(value) and all(
        isinstance(k, str) and _LOCALE.match(k) for k in value)


def per_locale(value: Any) -> list:
    """{'en-GB': x, 'nl-NL': y} -> [x, y]; anything else -> [value] (None -> [])."""
    if value is None or value == "":
        return []
    if is_localized(value):
        return [v for v in value.values() if v is not None and v != ""]
    return [value]


def listing(value: Any) -> list:
    """Prepr lists come as {'items': [...]}, as plain lists, or as null."""
    if isinstance(value, dict) and isinstance(value.get("items"), list):
        return value["items"]
    if isinstance(value, list):
        return value
    if value is None or value == "":
        return []
    return [value]


def locales_of(item: dict) -> list[str]:
    locales = item.get("locales")
    if isinstance(locales, list) and locales:
        return [str(x) for x in locales]
    if isinstance(item.get("items"), dict):
        return [k for k in item["items"] if _LOCALE.match(str(k))]
    return []


def ref_keys(value: Any) -> list[str]:
    """Every string a reference can be named by: id, slug, body, name, email, 'first last'."""
    if isinstance(value, dict):
        keys = [str(value[k]) for k in REF_KEYS if isinstance(value.get(k), (str, int)) and value[k] != ""]
        if value.get("first_name") or value.get("last_name"):
            keys.append(f"{value.get('first_name') or ''} {value.get('last_name') or ''}".strip())
        return keys
    if value is None:
        return []
    return [str(value)]


def display(value: Any) -> Any:
    """A short, JSON-able form of a candidate for result trees."""
    if isinstance(value, dict):
        for key in ("body", "name", "slug", "id"):
            if isinstance(value.get(key), str) and value[key]:
                return value[key]
        return {k: v for k, v in list(value.items())[:6]}
    if isinstance(value, str) and len(value) > 200:
        return value[:197] + "..."
    return value


def item_tags(item: dict, resource: str, tag_field: str = "tags") -> list:
    """Tags of a publication (every locale's tag field, plus old top-level `tags`) or asset/person."""
    found = list(listing(item.get("tags"))) if tag_field == "tags" or resource != "publication" else []
    if resource == "publication":
        items = item.get("items")
        if isinstance(items, dict):
            for loc in items.values():
                if isinstance(loc, dict):
                    found.extend(listing(loc.get(tag_field)))
    return found


def texts(value: Any, skip: frozenset[str] = frozenset()) -> Iterable[str]:
    """Human text in a Prepr field value: `body` strings, nested `items`, plain strings."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for v in value:
            yield from texts(v, skip)
    elif isinstance(value, dict):
        body = value.get("body")
        if isinstance(body, str):
            yield body
        for key, v in value.items():
            if key not in skip and key != "body" and isinstance(v, (dict, list)):
                yield from texts(v, skip)


def path_values(root: Any, parts: list[str]) -> list:
    """Values at a dotted path; `*` fans out over dict values and list items."""
    current = [root]
    for part in parts:
        nxt = []
        for node in current:
            if part == "*":
                nxt.extend(node.values() if isinstance(node, dict) else node if isinstance(node, list) else [])
            elif isinstance(node, dict) and part in node:
                nxt.append(node[part])
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                nxt.append(node[int(part)])
        current = nxt
    out: list = []
    for value in current:
        if isinstance(value, list):
            out.extend(value)
        elif value is not None:
            out.append(value)
    return out


def _title(item: dict, envelope: dict) -> list:
    items = item.get("items")
    if isinstance(items, dict):
        found = [v["title"].get("body") if isinstance(v.get("title"), dict) else v.get("title")
                 for v in items.values() if isinstance(v, dict) and v.get("title") is not None]
        return [t for t in found if isinstance(t, str)]
    return [v for v in per_locale(item.get("title") or item.get("name")) if isinstance(v, str)]


def _q(item: dict, envelope: dict) -> list:
    skip = frozenset({"tags", "channels", "model", "status", "created_by", "assigned_to"})
    out = list(texts(item.get("items"), skip)) if isinstance(item.get("items"), dict) else []
    out += [v for k, v in item.items() if isinstance(v, str) and k in ("title", "name", "body", "summary")]
    return out


def _const(*keys: str) -> Callable[[str], frozenset[str]]:
    value = frozenset(keys)
    return lambda resource: value


def _top(key: str, transform: Callable[[Any], list] = per_locale) -> Callable[[dict, dict], list]:
    return lambda item, envelope: transform(item.get(key))


def _containers(item: dict, envelope: dict) -> list:
    return listing(item.get("containers")) + listing(item.get("container"))


def _channels(item: dict, envelope: dict) -> list:
    return listing(item.get("channels")) + listing(item.get("channel"))


def _locales(item: dict, envelope: dict) -> list:
    return locales_of(item)


def _tags(item: dict, envelope: dict) -> list:
    # top-level `tags` (assets, persons, older publication payloads) plus every locale's tag field
    return item_tags(item, "publication")


_BUILTIN: dict[str, Field] = {
    "model": Field("model", "ref", _top("model", listing), _const("model")),
    "status": Field("status", "ref", _top("status"), _const("status")),
    "locales": Field("locales", "ref", _locales, _const("locales", "items")),
    "tags": Field("tags", "ref", _tags,
                  lambda r: frozenset({"items"}) if r == "publication" else frozenset({"tags"})),
    "channels": Field("channels", "ref", _channels, _const("channels")),
    "containers": Field("containers", "ref", _containers, _const("container")),
    "created_by": Field("created_by", "ref", _top("created_by", listing), _const("created_by")),
    "assigned_to": Field("assigned_to", "ref", _top("assigned_to", listing), _const("assigned_to")),
    "slug": Field("slug", "value", _top("slug"), _const("slug")),
    "title": Field("title", "text", _title,
                   lambda r: frozenset({"items"}) if r == "publication" else frozenset({"name"})),
    "q": Field("q", "text", _q, lambda r: frozenset({"items"}) if r == "publication" else frozenset({"name", "body"})),
    "created_on": Field("created_on", "date", _top("created_on"), _const("created_on")),
    "changed_on": Field("changed_on", "date", _top("changed_on"), _const("changed_on")),
    "publish_on": Field("publish_on", "date",
                        lambda item, env: per_locale(item.get("publish_on")) or per_locale(item.get("published_on")),
                        _const("publish_on")),
    "expire_on": Field("expire_on", "date", _top("expire_on"), _const("expire_on")),
}
FILTER_FIELDS = tuple(name for name in _BUILTIN if name in PREPR_FIELDS)  # in the order of the docs
if set(FILTER_FIELDS) != PREPR_FIELDS:  # a filter Prepr has and conditions cannot read yet
    raise ImportError(f"automation.fields lacks {sorted(PREPR_FIELDS - set(_BUILTIN))}")


def resolve_field(name: str) -> Field | None:
    """A filter name, `event.<path>` (the envelope) or a dotted path into the resource."""
    if name in _BUILTIN:
        return _BUILTIN[name]
    parts = name.split(".")
    if not all(_PATH_SEGMENT.match(p) for p in parts):
        return None
    if parts[0] == "event":
        if len(parts) == 1:
            return None
        rest = parts[1:]
        return Field(name, "value", lambda item, env: path_values(env, rest), _const())
    first = parts[0]
    if first == "*":
        return Field(name, "value", lambda item, env: path_values(item, parts), lambda r: frozenset({"*"}))
    kind = "date" if first.endswith("_on") and len(parts) == 1 else "value"
    return Field(name, kind, lambda item, env: path_values(item, parts), _const(first))
