"""Test controls: the request log and fault injection (served under `/_sandbox/`).

Faults match on method (or `*`) and a path glob (`/publications*`); each one answers with
`status` (429 carries `Retry-After` and `X-Prepr-RateLimit-*`), and/or sleeps `latency_ms`
first, for the next `times` matching requests (or until cleared when `times` is null).
"""
from __future__ import annotations

import collections
import fnmatch
import itertools
import threading
from dataclasses import asdict, dataclass, field
from typing import Any

from flask import Flask, Response, jsonify, request


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
        return jsonify({"token_user_id": api_user["id"], "webhook_url": emitter.url,
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
