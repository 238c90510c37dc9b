"""What the engine asks the worker to do: planned API calls and the pre-fetch, as plain data."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from .resources import RESOURCE_PATHS


def plain_id(value: Any) -> str | None:
    """An item id as a path may carry it: a non-empty string or an integer; anything else
    (an object, a list, a boolean) is no id at all, so nothing is fetched or written for it."""
    if isinstance(value, bool) or not isinstance(value, (str, int)) or value in (".", ".."):
        return None  # "." and "..": an HTTP client would resolve them as dot-segments
    return str(value) or None


def resource_path(resource: str, item_id: str) -> str:
    """`/publications/{id}` with the id percent-encoded as one segment: `../tags` or `X?fields=id`
    in a payload cannot reach another path or add a query."""
    return f"{RESOURCE_PATHS[resource]}/{quote(item_id, safe='')}"


@dataclass(frozen=True)
class PlannedCall:
    """One API call. `api` says which base URL (REST or tracking); `queue` where it runs
    (`celery`: with the event; `bulk`: the bulk queue). `params` is the query as ordered pairs
    (Prepr's filter encoding); `meta` carries what the worker needs beyond the request itself
    (bulk: the filter mapping and max_items, so it can list and back up first)."""

    method: str
    path: str
    params: tuple[tuple[str, str], ...] | None
    body: Any
    api: str  # "rest" | "tracking"
    queue: str  # "celery" | "bulk"
    rule_ids: tuple[str, ...]
    kind: str  # put | bulk_put | bulk_delete | trigger_webhooks | track_event
    dry_run: bool = False
    meta: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"method": self.method, "path": self.path,
                "params": [list(p) for p in self.params] if self.params is not None else None,
                "body": self.body, "api": self.api, "queue": self.queue,
                "rule_ids": list(self.rule_ids), "kind": self.kind, "dry_run": self.dry_run,
                "meta": self.meta}


@dataclass(frozen=True)
class FetchPlan:
    """The one GET the worker makes before evaluating: only when a rule needs what the payload lacks."""

    resource: str
    id: str
    fields: tuple[str, ...]  # top-level fields to ask for; ("*",) = the whole resource
    missing: tuple[str, ...]  # which of them the payload lacks (why we fetch)
    rule_ids: tuple[str, ...]

    @property
    def path(self) -> str:
        return resource_path(self.resource, self.id)

    @property
    def field_list(self) -> tuple[str, ...] | None:
        """The `fields` to ask Prepr for; None: the whole resource."""
        return None if "*" in self.fields or not self.fields else self.fields

    @property
    def params(self) -> tuple[tuple[str, str], ...]:
        wanted = self.field_list
        return (("fields", ",".join(wanted)),) if wanted else ()

    def to_json(self) -> dict:
        return {"method": "GET", "path": self.path, "params": [list(p) for p in self.params],
                "resource": self.resource, "id": self.id, "fields": list(self.fields),
                "missing": list(self.missing), "rule_ids": list(self.rule_ids)}
