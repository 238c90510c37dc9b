"""Event names, their resource kind, and the index from event name to the rules that listen.

`content_item.*` and the older `publication.*` are one family: names and patterns are
canonicalised to `content_item.` before matching. Exact names sit in a dict; globs are grouped
by pattern (one compiled regex per distinct pattern); the answer per event name is cached, so
matching cost grows with the rules that can match, not with all rules.
"""
from __future__ import annotations

import re
from typing import Iterable, Sequence

from .regex import compile_glob, glob_to_regex, regex_error
from .resources import FAMILIES, RESOURCES

VERBS = {r.kind: r.verbs for r in RESOURCES if r.verbs is not None}
_SAMPLES = {r.kind: r.prefixes[0] + "." for r in RESOURCES}
_GLOB = re.compile(r"[*?\[]")


def canonical(name: str) -> str:
    return "content_item." + name[len("publication."):] if name.startswith("publication.") else name


def resource_kind(event: str) -> str:
    """'content_item.changed' -> 'publication'; 'asset.created' -> 'asset'; unknown -> 'other'."""
    return FAMILIES.get(event.split(".", 1)[0], "other")


def is_glob(pattern: str) -> bool:
    return bool(_GLOB.search(pattern))


def check_pattern(pattern: str) -> str | None:
    """A message when an `on:` entry can never match a Prepr event, else None."""
    if is_glob(pattern):
        if regex_error(glob_to_regex(canonical(pattern))):
            return f"pattern '{pattern}' is not a valid glob (a character range out of order?)"
        if not kinds_of([pattern]):
            return f"pattern '{pattern}' matches no {', '.join(FAMILIES)} event"
        return None
    family, _, verb = pattern.partition(".")
    kind = FAMILIES.get(family)
    if kind is None or not verb:
        return f"unknown event '{pattern}' ({', '.join(p + '.*' for p in FAMILIES)})"
    if kind in VERBS and verb not in VERBS[kind]:
        return f"unknown event '{pattern}' (known: {', '.join(sorted(VERBS[kind]))})"
    return None


def kinds_of(patterns: Iterable[str]) -> set[str]:
    """Resource kinds a list of `on:` entries can match (for action/event compatibility)."""
    kinds: set[str] = set()
    for pattern in patterns:
        canon = canonical(pattern)
        if not is_glob(pattern):
            kinds.add(resource_kind(canon))
            continue
        if regex_error(glob_to_regex(canon)):
            continue  # reported by check_pattern
        regex = compile_glob(canon)
        for kind, prefix in _SAMPLES.items():
            verbs = VERBS.get(kind, {"created", "changed", "deleted", "subscribed", "x"})
            if canon.startswith(prefix) or any(regex.search(prefix + v) for v in verbs):
                kinds.add(kind)
    return kinds


def only_deletes(patterns: Iterable[str]) -> bool:
    patterns = list(patterns)
    return bool(patterns) and all(not is_glob(p) and p.endswith(".deleted") for p in patterns)


class EventIndex:
    """rule positions by event: exact names in a dict, globs grouped by pattern, answers cached."""

    def __init__(self, entries: Sequence[tuple[int, Sequence[str]]]) -> None:
        self._exact: dict[str, list[int]] = {}
        globs: dict[str, list[int]] = {}
        for position, patterns in entries:
            for pattern in {canonical(p) for p in patterns}:
                target = globs if is_glob(pattern) else self._exact
                target.setdefault(pattern, []).append(position)
        self._globs = [(compile_glob(p), ids) for p, ids in globs.items()]
        self._cache: dict[str, tuple[int, ...]] = {}

    def lookup(self, event: str) -> tuple[int, ...]:
        hit = self._cache.get(event)
        if hit is not None:
            return hit
        name = canonical(event)
        found = set(self._exact.get(name, ()))
        for regex, ids in self._globs:
            if regex.search(name):
                found.update(ids)
        hit = tuple(sorted(found))
        if len(self._cache) < 4096:  # event names are few; bound it against junk input
            self._cache[event] = hit
        return hit
