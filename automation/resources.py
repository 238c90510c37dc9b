"""The one list of Prepr resource families: event prefixes, resource kind, REST path, verbs.

Everything that maps an event to a resource (event index, fetch plan, PUT path, which actions
apply, the worker's routing) derives from RESOURCES, so a new family is one line here.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Resource:
    kind: str  # publication | asset | person
    path: str  # REST collection, e.g. /publications
    prefixes: tuple[str, ...]  # event name prefixes; the first is the canonical one
    verbs: frozenset[str] | None  # known event verbs (None: open-ended, e.g. person.liked)


RESOURCES: tuple[Resource, ...] = (
    Resource("publication", "/publications", ("content_item", "publication"),
             frozenset({"created", "changed", "published", "unpublished", "deleted"})),
    Resource("asset", "/assets", ("asset",), frozenset({"created", "uploaded", "changed", "deleted"})),
    Resource("person", "/persons", ("person",), None),
)
BY_KIND: dict[str, Resource] = {r.kind: r for r in RESOURCES}
KINDS: frozenset[str] = frozenset(BY_KIND)
FAMILIES: dict[str, str] = {prefix: r.kind for r in RESOURCES for prefix in r.prefixes}  # prefix -> kind
RESOURCE_PATHS: dict[str, str] = {r.kind: r.path for r in RESOURCES}
