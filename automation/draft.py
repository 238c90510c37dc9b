"""The one-write planner's working copy: per-item actions become ops applied to a Draft, and the
Draft's PUT body is the diff against the item as fetched — empty diff, no PUT.

Tags on publications live per locale (`items.{locale}.{tag_field}.items[{body}]`); assets and
persons carry one top-level list. Channels are ids: `channels: [{id}]`. `update`
fragments are deep-merged and only the leaves that differ from the item are sent.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from .fields import listing, ref_keys
from .text import fold

_SAME = object()


@dataclass(frozen=True)
class TagOp:
    add: bool
    locale: str | None  # None: the resource's top-level tags (assets, persons)
    field: str
    names: tuple[str, ...]


@dataclass(frozen=True)
class ChannelOp:
    add: bool
    ids: tuple[str, ...]


@dataclass(frozen=True)
class MergeOp:
    fragment: dict


def _tag_name(tag: Any) -> str:
    if isinstance(tag, dict):
        for key in ("body", "name", "slug", "id"):
            if tag.get(key):
                return str(tag[key])
    return str(tag)


def _has(tags: list, name: str) -> bool:
    target = fold(name)
    return any(fold(k) == target for t in tags for k in ref_keys(t))


class Draft:
    def __init__(self, item: dict) -> None:
        self.item = item
        self.tags: dict[tuple[str | None, str], tuple[list, list]] = {}  # key -> (original, desired)
        self.channels: tuple[list[str], list[str]] | None = None
        self.fragment: dict = {}

    def _current_tags(self, locale: str | None, field: str) -> list:
        if locale is None:
            return list(listing(self.item.get(field)))
        loc = (self.item.get("items") or {}).get(locale)
        return list(listing(loc.get(field))) if isinstance(loc, dict) else []

    def apply(self, op: Any) -> None:
        if isinstance(op, TagOp):
            key = (op.locale, op.field)
            if key not in self.tags:
                current = self._current_tags(op.locale, op.field)
                self.tags[key] = (current, list(current))
            desired = self.tags[key][1]
            for name in op.names:
                if op.add and not _has(desired, name):
                    desired.append({"body": name})
                elif not op.add:
                    target = fold(name)
                    desired[:] = [t for t in desired if target not in {fold(k) for k in ref_keys(t)}]
        elif isinstance(op, ChannelOp):
            if self.channels is None:
                current = [str(c.get("id")) if isinstance(c, dict) else str(c)
                           for c in listing(self.item.get("channels"))]
                self.channels = (current, list(current))
            desired = self.channels[1]
            for cid in op.ids:
                if op.add and cid not in desired:
                    desired.append(cid)
                elif not op.add and cid in desired:
                    desired.remove(cid)
        elif isinstance(op, MergeOp):
            self.fragment = deep_merge(self.fragment, op.fragment)

    def put_body(self) -> dict | None:
        """The minimal PUT body that turns the item into the draft, or None when nothing differs."""
        body: dict = {}
        for (locale, field), (original, desired) in self.tags.items():
            if len(original) == len(desired) and all(a is b for a, b in zip(original, desired)):
                continue
            value = {"items": [{"body": _tag_name(t)} for t in desired]}
            if locale is None:
                body[field] = value
            else:
                body.setdefault("items", {}).setdefault(locale, {})[field] = value
        if self.channels is not None and set(self.channels[0]) != set(self.channels[1]):
            body["channels"] = [{"id": cid} for cid in self.channels[1]]
        changes = diff(self.fragment, self.item)
        if changes is not _SAME:
            body = deep_merge(body, changes)
        return body or None


def deep_merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def diff(fragment: Any, current: Any) -> Any:
    """The part of `fragment` that differs from `current` (`_SAME` when nothing does)."""
    if isinstance(fragment, dict) and isinstance(current, dict):
        out = {}
        for key, value in fragment.items():
            sub = diff(value, current.get(key, _MISSING))
            if sub is not _SAME:
                out[key] = sub
        return out if out else _SAME
    if isinstance(fragment, dict) and not fragment:
        return _SAME
    return _SAME if fragment == current and current is not _MISSING else fragment


_MISSING = object()


def apply_put(item: dict, body: dict) -> dict:
    """The item as Prepr would hold it after the PUT (lists replace, mappings merge); for tests,
    snapshots and re-planning."""
    return deep_merge(item, body)
