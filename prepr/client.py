"""PreprClient: the only way the service talks to Prepr's REST and tracking APIs.

HTTP is a requests.Session (session.py): pooled keep-alive, gzip, proxies, CA bundle. On top:
Bearer auth in a header (never in a URL, so it cannot leak into logs or errors), connect/read
timeouts, a shared rate limiter, and typed errors. It never retries by itself: the worker owns
the retry policy and gets `retryable` / `retry_after` from each PreprError. Every call is
reported to the listeners (method, path, status, elapsed ms) so traces can show exactly what
was sent.
"""
from __future__ import annotations

import email.utils
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping, Sequence
from urllib.parse import quote

import requests

from .dialects import PUBLICATIONS, Dialect, Unsupported
from .errors import PreprConnectionError, PreprError, error_class
from .filters import encode_filter
from .mutation import Mutation, full_put
from .ratelimit import RateLimiter
from .session import Answer, NoAnswer, exchange, make_session

log = logging.getLogger("prepr.client")

PAGE_SIZE = 100  # Prepr's maximum `limit`
Params = Mapping[str, Any] | Sequence[tuple[str, Any]] | None


@dataclass(frozen=True)
class CallRecord:
    """One sent call, as a trace records it."""
    method: str
    path: str
    status: int | None
    elapsed_ms: float
    error: str | None = None


def _segment(id: Any) -> str:
    """An id as one path segment, percent-encoded; only strings and integers are ids."""
    if isinstance(id, bool) or not isinstance(id, (str, int)) or id in ("", ".", ".."):
        raise TypeError(f"a Prepr id must be a non-empty string or an integer, not {id!r:.40}")
    return quote(str(id), safe="")  # "." and ".." are refused: HTTP clients resolve them as dot-segments


def _fields(fields: str | Sequence[str] | None) -> str | None:
    if fields is None:
        return None
    return fields if isinstance(fields, str) else ",".join(fields)


def _retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait from Retry-After (seconds or HTTP date) or X-Prepr-RateLimit-Reset."""
    raw = headers.get("Retry-After")
    if raw:
        try:
            return max(0.0, float(raw))
        except ValueError:
            try:
                return max(0.0, email.utils.parsedate_to_datetime(raw).timestamp() - time.time())
            except (TypeError, ValueError):
                pass
    reset = headers.get("X-Prepr-RateLimit-Reset")
    if reset:
        try:
            value = float(reset)
        except ValueError:
            return None
        # Either seconds-until-reset or an epoch timestamp.
        return max(0.0, value - time.time()) if value > 1e9 else value
    return None


class PreprClient:
    """Prepr REST + tracking client. Thread-safe; share one per process."""

    def __init__(self, api_url: str, token: str, tracking_url: str = "https://tracking.prepr.io", *,
                 rate_limiter: RateLimiter | None = None, timeout: float | tuple[float, float] = (3.05, 15),
                 session: requests.Session | None = None,
                 on_call: Callable[[CallRecord], None] | None = None,
                 user_agent: str = "prepr-automation",
                 dialect: Dialect | Callable[[], Dialect] = PUBLICATIONS,
                 customers_url: str = "https://customers.prepr.io") -> None:
        if not token:
            raise ValueError("a Prepr access token is required")
        self.api_url = api_url.rstrip("/")
        self.tracking_url = tracking_url.rstrip("/")
        self.rate_limiter = rate_limiter
        self.timeout = timeout
        self.session = session or make_session()
        self._auth = {"Authorization": f"Bearer {token}"}
        self._token = token
        self.user_agent = user_agent
        self.listeners: list[Callable[[CallRecord], None]] = [on_call] if on_call else []
        self._local = threading.local()  # listeners of one thread: a task records only its own calls
        self.customers_url = customers_url.rstrip("/")
        # a Dialect, or how to find it out on first use (PREPR_API=auto); asked once per client
        self._dialect: Dialect | None = dialect if isinstance(dialect, Dialect) else None
        self._resolve = None if isinstance(dialect, Dialect) else dialect
        self._dialect_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"PreprClient({self.api_url!r})"

    def _thread_listeners(self) -> list[Callable[[CallRecord], None]]:
        if not hasattr(self._local, "listeners"):
            self._local.listeners = []
        return self._local.listeners

    def add_listener(self, listener: Callable[[CallRecord], None]) -> None:
        """Observe the calls this thread makes (concurrent tasks in one process stay apart)."""
        self._thread_listeners().append(listener)

    def remove_listener(self, listener: Callable[[CallRecord], None]) -> None:
        mine = self._thread_listeners()
        if listener in mine:
            mine.remove(listener)

    # -- transport ---------------------------------------------------------------------------

    def request(self, method: str, path: str, params: Params = None, json: Any = None, *,
                base_url: str | None = None, expect_json: bool = True) -> Any:
        """Send one call; return the decoded JSON (None for an empty body); raise PreprError."""
        method = method.upper()
        url = (base_url or self.api_url) + (path if path.startswith("/") else "/" + path)
        headers = {**self._auth, "Accept": "application/json", "User-Agent": self.user_agent}
        if self.rate_limiter is not None:
            self.rate_limiter.acquire()
        started = time.perf_counter()
        try:
            response = exchange(self.session, method, url, params, json, headers, self.timeout)
        except NoAnswer as exc:
            self._report(method, path, None, started, "timeout" if exc.timeout else str(exc))
            what = "timed out" if exc.timeout else "no answer"
            raise PreprConnectionError(f"{what}: {exc}", method=method, path=path) from None
        self._report(method, path, response.status, started, None)
        self._observe_rate_headers(response)
        if response.status >= 400:
            raise self._error(method, path, response)
        if not expect_json or not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise PreprError("answer is not JSON", status=response.status, method=method, path=path,
                             body_excerpt=self._scrub(response.text), retryable=False) from None

    def _report(self, method: str, path: str, status: int | None, started: float, error: str | None) -> None:
        record = CallRecord(method, path.split("?", 1)[0], status,
                            round((time.perf_counter() - started) * 1000, 2), error)
        log.debug("prepr %s %s -> %s in %.1f ms", record.method, record.path, status or error, record.elapsed_ms)
        if getattr(self._local, "quiet", False):
            return
        for listener in [*self.listeners, *self._thread_listeners()]:
            try:
                listener(record)
            except Exception:  # an observer must never break a call
                log.exception("call listener failed")

    def _observe_rate_headers(self, response: Answer) -> None:
        if self.rate_limiter is None:
            return
        if response.status == 429:
            self.rate_limiter.block(_retry_after(response.headers) or 1.0)
        elif response.headers.get("X-Prepr-RateLimit-Remaining") == "0":
            wait = _retry_after(response.headers)
            if wait:
                self.rate_limiter.block(wait)

    def _scrub(self, text: str) -> str:
        return text.replace(self._token, "***")[:500]

    def _error(self, method: str, path: str, response: Answer) -> PreprError:
        status = response.status
        cls = error_class(status)
        retry_after = _retry_after(response.headers) if status == 429 or status >= 500 else None
        if status == 429 and retry_after is None:
            retry_after = 1.0
        reason = response.reason or "error"
        return cls(f"Prepr answered {status} {reason}", status=status, retry_after=retry_after,
                   method=method, path=path, body_excerpt=self._scrub(response.text))

    # -- the dialect ---------------------------------------------------------------------------

    @property
    def dialect(self) -> Dialect:
        """The REST dialect of this environment (SPEC §9); found out on first use when `auto`."""
        if self._dialect is None:
            with self._dialect_lock:
                if self._dialect is None:
                    assert self._resolve is not None
                    self._local.quiet = True  # the client's own question, not a call of the task that asked
                    try:
                        self._dialect = self._resolve()
                    finally:
                        self._local.quiet = False
        return self._dialect

    def item_path(self, id: Any) -> str:
        return f"{self.dialect.items}/{_segment(id)}"

    def resource_path(self, resource: str, id: Any) -> tuple[str, str | None]:
        """(path, base URL or None for the API's) of one resource of a family, in this dialect."""
        if resource == "publication":
            return self.item_path(id), None
        if resource == "person":
            dialect = self.dialect
            return f"{dialect.persons}/{_segment(id)}", (self.customers_url if dialect.customers_host else None)
        if resource == "asset":
            return f"/assets/{_segment(id)}", None
        raise ValueError(f"no REST resource for {resource!r}")

    def get_resource(self, resource: str, id: Any, fields: str | Sequence[str] | None = None) -> dict[str, Any]:
        path, base = self.resource_path(resource, id)
        params = {"fields": _fields(fields)} if fields else None
        return self.request("GET", path, params=params, base_url=base)

    # -- items (publications / content items) -------------------------------------------------

    def list_items(self, filter: Mapping[str, Any] | None = None, fields: str | Sequence[str] | None = None,
                   limit: int | None = None, sort: str | None = None,
                   extra_params: Sequence[tuple[str, Any]] = ()) -> Iterator[dict[str, Any]]:
        """Every item the filter matches, page by page (at most `limit` in all)."""
        yield from self._paginate(self.dialect.items, encode_filter(filter), fields, limit, sort, extra_params)

    def count_items(self, filter: Mapping[str, Any] | None = None) -> int:
        page = self.request("GET", self.dialect.items,
                            params=[*encode_filter(filter), ("limit", 1), ("fields", "id")])
        return int(page.get("total", 0))

    def _paginate(self, path: str, query: Sequence[tuple[str, Any]], fields: str | Sequence[str] | None,
                  limit: int | None, sort: str | None,
                  extra: Sequence[tuple[str, Any]] = ()) -> Iterator[dict[str, Any]]:
        skip, yielded = 0, 0
        while True:
            page_size = PAGE_SIZE if limit is None else min(PAGE_SIZE, limit - yielded)
            if page_size <= 0:
                return
            params = [*query, *extra, ("skip", skip), ("limit", page_size)]
            if fields:
                params.append(("fields", _fields(fields)))
            if sort:
                params.append(("sort", sort))
            page = self.request("GET", path, params=params) or {}
            items = page.get("items") or []
            for item in items:
                yield item
            yielded += len(items)
            skip += len(items)
            total = page.get("total")
            if not items or (total is not None and skip >= int(total)):
                return

    def get_item(self, id: Any, fields: str | Sequence[str] | None = None) -> dict[str, Any]:
        return self.get_resource("publication", id, fields)

    def create_item(self, body: Mapping[str, Any]) -> dict[str, Any]:
        return self.request("POST", self.dialect.items, json=body)

    def mutation(self, change: Mapping[str, Any], current: Mapping[str, Any] | None) -> Mutation:
        """The calls `change` (the minimal change the rules planned) becomes in this dialect."""
        if not self.dialect.full_locale_put:
            return Mutation(dict(change) or None)
        if current is None:
            raise ValueError("today's Prepr replaces each locale a PUT names: the item must be fetched first")
        return full_put(current, change)

    def write_item(self, id: Any, change: Mapping[str, Any], current: Mapping[str, Any] | None = None) -> Any:
        """One item's change: the seeds' partial PUT, or today's complete locales (merged into
        `current`, the item as fetched) and publish/unpublish PATCHes. Returns the PUT's answer."""
        return self.send(id, self.mutation(change, current))

    def send(self, id: Any, mutation: Mutation) -> Any:
        """The calls of one item's Mutation: its PUT, then its publish/unpublish PATCHes."""
        answer = None
        if mutation.body is not None:
            answer = self.request("PUT", self.item_path(id), json=mutation.body)
        for locale, verb in mutation.transitions:
            self.request("PATCH", f"{self.item_path(id)}/{_segment(locale)}/{verb}", json={})
        return answer

    def delete_item(self, id: Any) -> None:
        self.request("DELETE", self.item_path(id), expect_json=False)

    # -- bulk (the seeds' dialect only): the filter goes in the query string, as for a list ------

    def _bulk(self, what: str, verb: str, filter: Mapping[str, Any] | None, body: Any) -> dict[str, Any]:
        if not self.dialect.bulk:
            raise Unsupported(what, self.dialect)
        return self.request("POST", f"{PUBLICATIONS.items}/bulk/{verb}", params=encode_filter(filter),
                            json=body) or {}

    def bulk_put(self, filter: Mapping[str, Any] | None, body: Mapping[str, Any]) -> dict[str, Any]:
        return self._bulk("bulk put", "put", filter, body)

    def bulk_delete(self, filter: Mapping[str, Any] | None) -> dict[str, Any]:
        return self._bulk("bulk delete", "delete", filter, {})

    def bulk_webhooks(self, filter: Mapping[str, Any] | None, event: str) -> dict[str, Any]:
        return self._bulk("trigger_webhooks (bulk webhooks)", "webhooks", filter, {"event": event})

    # -- tags, channels, models --------------------------------------------------------------

    def list_tags(self, limit: int | None = None) -> Iterator[dict[str, Any]]:
        yield from self._paginate("/tags", (), None, limit, None)

    def list_channels(self) -> Iterator[dict[str, Any]]:
        yield from self._paginate("/channels", (), None, None, None)

    def list_models(self) -> Iterator[dict[str, Any]]:
        yield from self._paginate("/models", (), None, None, None)

    # -- assets, persons, tracking -----------------------------------------------------------

    def get_asset(self, id: str, fields: str | Sequence[str] | None = None) -> dict[str, Any]:
        return self.get_resource("asset", id, fields)

    def get_person(self, id: str, fields: str | Sequence[str] | None = None) -> dict[str, Any]:
        """A person: `/persons/{id}` (the seeds), or the customer at PREPR_CUSTOMERS_URL (today)."""
        return self.get_resource("person", id, fields)

    def track_event(self, body: Mapping[str, Any]) -> None:
        """POST {tracking_url}/events; Prepr answers 202 Accepted."""
        self.request("POST", "/events", json=body, base_url=self.tracking_url, expect_json=False)

    def close(self) -> None:
        self.session.close()
