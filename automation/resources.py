"""The one list of Prepr resource families: event prefixes, resource kind, REST path, verbs.

Everything that maps an event to a resource (event index, fetch plan, PUT path, which actions
apply, the worker's routing) derives from RESOURCES, so a new family is one line here.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Resource:
    kind: str  # publication | asset | person | … (the families Prepr's webhooks send)
    path: str | None  # REST collection, e.g. /publications; None: no fetchable resource (payload only)
    prefixes: tuple[str, ...]  # event name prefixes; the first is the canonical one
    verbs: frozenset[str] | None  # known event verbs (None: open-ended, e.g. person.liked)


RESOURCES: tuple[Resource, ...] = (
    Resource("publication", "/publications", ("content_item", "publication"),
             frozenset({"created", "changed", "published", "unpublished", "deleted"})),
    Resource("asset", "/assets", ("asset",), frozenset({"created", "uploaded", "changed", "deleted"})),
    Resource("person", "/persons", ("person",), None),  # also person.segment.added / .removed
    # Families today's webhooks also send (SPEC §9): rules run on the payload alone.
    Resource("storage_file", None, ("storage_file",), frozenset({"deleted"})),
    Resource("cdn_file", None, ("cdn_file",), frozenset({"deleted"})),
    Resource("schema", None, ("schema",), frozenset({"changed"})),
    Resource("segment", None, ("segment",), frozenset({"created", "changed", "deleted"})),
    Resource("tag", None, ("tag",), frozenset({"created", "changed", "deleted"})),
)
BY_KIND: dict[str, Resource] = {r.kind: r for r in RESOURCES}
KINDS: frozenset[str] = frozenset(r.kind for r in RESOURCES if r.path)  # what per-item actions can write
FAMILIES: dict[str, str] = {prefix: r.kind for r in RESOURCES for prefix in r.prefixes}  # prefix -> kind
# The seeds' paths: how plans and rule tests name a resource; the client maps them to the dialect's.
RESOURCE_PATHS: dict[str, str] = {r.kind: r.path for r in RESOURCES if r.path}
