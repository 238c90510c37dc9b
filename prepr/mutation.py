"""A minimal change turned into what today's Mutation API needs: each touched locale, complete.

The worker plans a minimal change (`{"items": {"en-GB": {"tags": …}}, "channels": […]}`: only
what rules changed). The seeds' API merges such a PUT; today's replaces every locale the PUT
names with exactly what it carries, so sending the change alone would empty every other field
of the locale. `full_put` merges the change into the item as fetched (the run's one GET) and
names only the locales it touches. Pure over data, like Prepr's own integrations do it: GET,
merge the change into the whole locale, PUT that.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Mapping

# Keys Prepr computes itself: a GET shows them, a PUT does not take them.
READ_ONLY = frozenset({"id", "created_on", "changed_on", "label", "last_published_on", "read_time",
                       "version", "_meta", "created_by", "updated_by", "environment", "counters"})
# Top-level keys of an item that are not content a PUT should repeat.
_ITEM_META = READ_ONLY | {"items", "locales", "model", "status", "title", "workflow_stage"}
PUBLISH_STATES = {"published": "publish", "unpublished": "unpublish"}


@dataclass
class Mutation:
    """The calls one item's change becomes: at most one PUT body, then publish/unpublish PATCHes."""

    body: dict[str, Any] | None
    transitions: list[tuple[str, str]] = field(default_factory=list)  # (locale, "publish" | "unpublish")


def writable(value: Any) -> Any:
    """A field's value as a GET shows it, in the shape a PUT takes: computed keys dropped, each
    reference in a list (tag, asset, linked item) by its id (a tag without one by its body)."""
    if isinstance(value, list):
        return [writable(v) for v in value]
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for key, sub in value.items():
        if key in READ_ONLY or sub is None:
            continue
        if key == "items" and isinstance(sub, list):
            out[key] = [_reference(e) for e in sub]
        else:
            out[key] = writable(sub)
    return out


def _reference(element: Any) -> Any:
    if isinstance(element, dict):
        if element.get("id"):
            return {"id": element["id"]}
        if element.get("body"):
            return {"body": element["body"]}
        return writable(element)
    return element


def _merge(base: dict[str, Any], change: Mapping[str, Any]) -> dict[str, Any]:
    """Mappings merge key by key; anything else (lists included) is replaced by the change."""
    out = dict(base)
    for key, value in change.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        elif value is None:
            out.pop(key, None)
        else:
            out[key] = copy.deepcopy(value)
    return out


def locales_of(item: Mapping[str, Any]) -> list[str]:
    items = item.get("items")
    named = [str(loc) for loc in item.get("locales") or [] if isinstance(loc, str)]
    return list(dict.fromkeys([*named, *(items.keys() if isinstance(items, dict) else ())]))


def full_put(current: Mapping[str, Any], change: Mapping[str, Any]) -> Mutation:
    """The Mutation-API calls for `change` on the item `current` (as fetched, with its `items`).

    Each locale the change touches is sent complete (its fetched content with the change merged
    in); untouched locales are not sent. A change of top-level keys only (channels, slug…) still
    must name a locale: the item's first, complete and unchanged. `status: published` /
    `unpublished` becomes a publish / unpublish PATCH per locale of the item."""
    change = dict(change)
    transitions: list[tuple[str, str]] = []
    status = change.pop("status", None)
    locales = locales_of(current)
    if isinstance(status, str) and status in PUBLISH_STATES:
        if status != current.get("status"):
            transitions = [(loc, PUBLISH_STATES[status]) for loc in locales]
    elif status is not None:
        change["status"] = status
    fetched = current.get("items") if isinstance(current.get("items"), dict) else {}
    touched = change.pop("items", None) or {}
    if not change and not touched:
        return Mutation(None, transitions)
    named = list(touched) or locales[:1]
    if not named:
        raise ValueError("the item has no locale to write")
    items = {loc: _merge(writable(fetched.get(loc) or {}), touched.get(loc) or {}) for loc in named}
    return Mutation({"locales": named, "items": items, **change}, transitions)
