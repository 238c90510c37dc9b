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

import requests

from .errors import PreprConnectionError, PreprError, PreprNotFound, error_class
from .filters import encode_filter
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
                 user_agent: str = "prepr-automation") -> None:
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
        self._channels: dict[str, dict[str, Any]] | None = None
        self._channels_lock = threading.Lock()

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

    # -- publications ------------------------------------------------------------------------

    def list_publications(self, filter: Mapping[str, Any] | None = None, fields: str | Sequence[str] | None = None,
                          limit: int | None = None, sort: str | None = None,
                          extra_params: Sequence[tuple[str, Any]] = ()) -> Iterator[dict[str, Any]]:
        """Every publication the filter matches, page by page (at most `limit` in all)."""
        yield from self._paginate("/publications", encode_filter(filter), fields, limit, sort, extra_params)

    def count_publications(self, filter: Mapping[str, Any] | None = None) -> int:
        page = self.request("GET", "/publications", params=[*encode_filter(filter), ("limit", 1), ("fields", "id")])
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

    def get_publication(self, id: str, fields: str | Sequence[str] | None = None) -> dict[str, Any]:
        params = {"fields": _fields(fields)} if fields else None
        return self.request("GET", f"/publications/{id}", params=params)

    def create_publication(self, body: Mapping[str, Any]) -> dict[str, Any]:
        return self.request("POST", "/publications", json=body)

    def update_publication(self, id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """Partial update: only the fields in `body` change."""
        return self.request("PUT", f"/publications/{id}", json=body)

    def delete_publication(self, id: str) -> None:
        self.request("DELETE", f"/publications/{id}", expect_json=False)

    # -- bulk: the filter goes in the query string, exactly as for a list ---------------------

    def bulk_put(self, filter: Mapping[str, Any] | None, body: Mapping[str, Any]) -> dict[str, Any]:
        return self.request("POST", "/publications/bulk/put", params=encode_filter(filter), json=body) or {}

    def bulk_delete(self, filter: Mapping[str, Any] | None) -> dict[str, Any]:
        return self.request("POST", "/publications/bulk/delete", params=encode_filter(filter), json={}) or {}

    def bulk_webhooks(self, filter: Mapping[str, Any] | None, event: str) -> dict[str, Any]:
        return self.request("POST", "/publications/bulk/webhooks", params=encode_filter(filter),
                            json={"event": event}) or {}

    # -- tags, channels, models --------------------------------------------------------------

    def list_tags(self, limit: int | None = None) -> Iterator[dict[str, Any]]:
        yield from self._paginate("/tags", (), None, limit, None)

    def create_tag(self, body: str) -> dict[str, Any]:
        """Create a tag by its name (Prepr answers with the existing tag if it is known)."""
        return self.request("POST", "/tags", json={"body": body})

    def list_channels(self) -> Iterator[dict[str, Any]]:
        yield from self._paginate("/channels", (), None, None, None)

    def list_models(self) -> Iterator[dict[str, Any]]:
        yield from self._paginate("/models", (), None, None, None)

    def resolve_channel(self, ref: str) -> dict[str, Any]:
        """A channel by id, slug or name (case-insensitive); the list is fetched once per client."""
        with self._channels_lock:
            if self._channels is None:
                index: dict[str, dict[str, Any]] = {}
                for channel in self.list_channels():
                    for key in (channel.get("id"), channel.get("slug"), channel.get("name"), channel.get("body")):
                        if isinstance(key, str) and key:
                            index.setdefault(key.casefold(), channel)
                self._channels = index
            found = self._channels.get(str(ref).casefold())
        if found is None:
            raise PreprNotFound(f"no channel with id, slug or name {ref!r}", method="GET", path="/channels",
                                retryable=False)
        return found

    def forget_channels(self) -> None:
        with self._channels_lock:
            self._channels = None

    # -- assets, persons, tracking -----------------------------------------------------------

    def get_asset(self, id: str, fields: str | Sequence[str] | None = None) -> dict[str, Any]:
        return self.request("GET", f"/assets/{id}", params={"fields": _fields(fields)} if fields else None)

    def get_person(self, id: str, fields: str | Sequence[str] | None = None) -> dict[str, Any]:
        return self.request("GET", f"/persons/{id}", params={"fields": _fields(fields)} if fields else None)

    def track_event(self, body: Mapping[str, Any]) -> None:
        """POST {tracking_url}/events; Prepr answers 202 Accepted."""
        self.request("POST", "/events", json=body, base_url=self.tracking_url, expect_json=False)

    def close(self) -> None:
        self.session.close()
