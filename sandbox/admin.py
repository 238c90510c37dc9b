"""Test controls: the request log, fault injection and remote mode (served under `/_sandbox/`).

Faults match on method (or `*`) and a path glob (`/publications*`); each one answers with
`status` (429 carries `Retry-After` and `X-Prepr-RateLimit-*`), and/or sleeps `latency_ms`
first, for the next `times` matching requests (or until cleared when `times` is null).

Remote mode makes the sandbox behave like Prepr across the internet: every API call takes
`latency_ms`, and each token's requests are counted in Prepr's rate-limit windows (`limits`
notation, moving windows); a request beyond any window is answered 429 with Retry-After.
"""
from __future__ import annotations

import collections
import fnmatch
import itertools
import math
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from flask import Flask, Response, jsonify, request
from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter


@dataclass
class Fault:
    id: int
    path: str
    method: str = "*"
    status: int | None = None
    retry_after: float | None = None
    latency_ms: int = 0
    times: int | None = 1
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        return self.method in ("*", method) and fnmatch.fnmatchcase(path, self.path)


class Faults:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._ids = itertools.count(1)

    def add(self, spec: dict[str, Any]) -> Fault:
        if not isinstance(spec.get("path"), str):
            raise ValueError("a fault needs a path pattern")
        status = spec.get("status")
        if status is not None and not (isinstance(status, int) and 200 <= status <= 599):
            raise ValueError("status must be an HTTP status code (200-599; 2xx with a body: a malformed answer)")
        times = spec.get("times", 1)
        if times is not None and (not isinstance(times, int) or times < 1):
            raise ValueError("times must be a positive integer or null (until cleared)")
        fault = Fault(id=next(self._ids), path=spec["path"], method=str(spec.get("method", "*")).upper(),
                      status=status, retry_after=spec.get("retry_after"),
                      latency_ms=int(spec.get("latency_ms") or 0), times=times, body=spec.get("body"),
                      headers={str(k): str(v) for k, v in (spec.get("headers") or {}).items()})
        with self._lock:
            self._faults.append(fault)
        return fault

    def take(self, method: str, path: str) -> Fault | None:
        """The first live fault for this request, counting the hit."""
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path):
                    fault.hits += 1
                    if fault.times is not None:
                        fault.times -= 1
                        if fault.times <= 0:
                            self._faults.remove(fault)
                    return fault
        return None

    def list(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(f) for f in self._faults]

    def clear(self, fault_id: int | None = None) -> int:
        with self._lock:
            before = len(self._faults)
            self._faults = [f for f in self._faults if fault_id is not None and f.id != fault_id]
            return before - len(self._faults)


class Remote:
    """Latency on every call and Prepr's windows per token. Thread-safe; the server is threaded,
    so a call's latency is its own thread's sleep and never delays another call."""

    def __init__(self, latency_ms: int = 0, rate_limit: str | None = None) -> None:
        self._lock = threading.Lock()
        self.configure(latency_ms, rate_limit)

    def configure(self, latency_ms: Any = 0, rate_limit: Any = None) -> None:
        """Set both (and start the windows afresh); ValueError on a bad value."""
        if not isinstance(latency_ms, int) or isinstance(latency_ms, bool) or not 0 <= latency_ms <= 60_000:
            raise ValueError("latency_ms must be a whole number of milliseconds, 0-60000")
        if rate_limit is not None and not isinstance(rate_limit, str):
            raise ValueError("rate_limit must be a string such as '35/second;800/minute', or null")
        windows: list[RateLimitItem] = parse_many(rate_limit) if rate_limit else []
        if any(w.amount <= 0 for w in windows):
            raise ValueError("every window needs a positive number of requests")
        with self._lock:
            self.latency_ms, self.rate_limit, self.windows = latency_ms, rate_limit or None, windows
            self._counter = MovingWindowRateLimiter(MemoryStorage())

    def to_json(self) -> dict[str, Any]:
        return {"latency_ms": self.latency_ms, "rate_limit": self.rate_limit}

    def admit(self, token: str) -> tuple[bool, dict[str, str]]:
        """Count one request of `token` in every window, or refuse it (uncounted) when one is
        full; the X-Prepr-RateLimit-* headers of the tightest window (+ Retry-After if refused)."""
        if not self.windows:
            return True, {}
        with self._lock:
            counter, windows = self._counter, self.windows
            full = next((w for w in windows if not counter.test(w, token)), None)
            if full is None:
                for window in windows:
                    counter.hit(window, token)
            stats = {w: counter.get_window_stats(w, token) for w in windows}
        tightest = full or min(windows, key=lambda w: (stats[w].remaining / w.amount, -stats[w].reset_time))
        reset = max(0.0, stats[tightest].reset_time - time.time())
        headers = {"X-Prepr-RateLimit-Limit": str(tightest.amount),
                   "X-Prepr-RateLimit-Remaining": str(stats[tightest].remaining),
                   "X-Prepr-RateLimit-Reset": f"{reset:.3f}"}
        if full is not None:
            headers["Retry-After"] = str(max(1, math.ceil(reset)))
        return full is None, headers

    def delay(self) -> None:
        if self.latency_ms:
            time.sleep(self.latency_ms / 1000)


class RequestLog:
    """Every API request (not the admin ones): method, path, query, status, time, acting user."""

    def __init__(self, maxlen: int = 200_000) -> None:
        self._lock = threading.Lock()
        self._entries: collections.deque[dict[str, Any]] = collections.deque(maxlen=maxlen)

    def add(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self._entries.append(entry)

    def list(self, method: str | None = None, path: str | None = None, since: float | None = None) -> list[dict[str, Any]]:
        with self._lock:
            entries = list(self._entries)
        return [e for e in entries
                if (method is None or e["method"] == method.upper())
                and (path is None or fnmatch.fnmatchcase(e["path"], path))
                and (since is None or e["timestamp"] >= since)]

    def clear(self) -> int:
        with self._lock:
            count = len(self._entries)
            self._entries.clear()
            return count


def register_admin(app: Flask) -> None:
    """The `/_sandbox/` routes (token-checked by the app's before_request like every route)."""
    from . import seed

    state = app.extensions["sandbox"]
    store, emitter, faults = state["store"], state["emitter"], state["faults"]
    requests_log, tracked, api_user = state["requests"], state["tracked"], state["api_user"]

    def body() -> dict[str, Any]:
        data = request.get_json(silent=True)
        return data if isinstance(data, dict) else {}

    @app.get("/_sandbox/info")
    def info() -> Response:
        return jsonify({"token_user_id": api_user["id"], "webhook_url": emitter.url, "api": state["api"],
                        "counts": {k: len(v) for k, v in store.docs.items()}, "data_file": str(store.path)})

    @app.get("/_sandbox/requests")
    def list_requests() -> Response:
        since = request.args.get("since")
        return jsonify(requests_log.list(request.args.get("method"), request.args.get("path"),
                                         float(since) if since else None))

    @app.delete("/_sandbox/requests")
    def clear_requests() -> Response:
        return jsonify({"cleared": requests_log.clear()})

    @app.get("/_sandbox/faults")
    def list_faults() -> Response:
        return jsonify(faults.list())

    @app.post("/_sandbox/faults")
    def add_fault() -> Response | tuple[Response, int]:
        try:
            fault = faults.add(body())
        except ValueError as exc:
            return jsonify({"error": {"status": 422, "message": str(exc)}}), 422
        return jsonify({"id": fault.id}), 201

    @app.delete("/_sandbox/faults")
    def clear_faults() -> Response:
        return jsonify({"cleared": faults.clear()})

    @app.delete("/_sandbox/faults/<int:fault_id>")
    def clear_fault(fault_id: int) -> Response:
        return jsonify({"cleared": faults.clear(fault_id)})

    @app.get("/_sandbox/remote")
    def get_remote() -> Response:
        return jsonify(state["remote"].to_json())

    @app.put("/_sandbox/remote")
    def configure_remote() -> Response | tuple[Response, int]:
        data = body()
        try:
            state["remote"].configure(data.get("latency_ms", 0), data.get("rate_limit"))
        except ValueError as exc:
            return jsonify({"error": {"status": 422, "message": str(exc)}}), 422
        return jsonify(state["remote"].to_json())

    @app.get("/_sandbox/events")
    def list_tracked() -> Response:
        return jsonify(tracked.list())

    @app.get("/_sandbox/webhooks")
    def list_webhooks() -> Response:
        return jsonify({"url": emitter.url, "pending": emitter.pending(), "dropped": emitter.dropped,
                        "deliveries": list(emitter.deliveries)})

    @app.put("/_sandbox/webhooks")
    def configure_webhooks() -> Response:
        data = body()
        emitter.configure(data.get("url"), data.get("secret"))
        return jsonify({"url": emitter.url})

    @app.post("/_sandbox/webhooks/flush")
    def flush_webhooks() -> Response:
        return jsonify({"idle": emitter.wait_idle(float(body().get("timeout", 10)))})

    @app.post("/_sandbox/reset")
    def reset() -> Response:
        payload = body().get("seed")
        content = seed.demo() if payload in (None, "demo") else ({} if payload == "empty" else payload)
        loaded = seed.load(store, content, api_user)
        requests_log.clear()
        faults.clear()
        tracked.clear()
        return jsonify({"publications": loaded})
