"""HTTP for the client: pooled keep-alive connections, made by the standard library's http.client,
spoken over with prepr.http11.

Not requests, not urllib3: per call they re-parse and re-encode the URL, look up pools and build
layers of objects, and http.client's own exchange parses headers with the email package. A GET
to a local server costs about 60 µs of CPU this way, 150 µs through http.client, 190 µs through
urllib3's PoolManager and 460 µs through requests, and an event's work is mostly its HTTP calls
(docs/performance.md). What a client library would give us is kept:

- idle connections pooled per origin (at most `maxsize` each), shared by threads, dropped after
  a fork, and never handed out once the server has closed them (checked with a zero-timeout
  poll before reuse); when a reused connection still turns out dead before any answer, an
  idempotent call (GET, HEAD, PUT, DELETE) is sent once more on a fresh one, others fail as
  "no answer" and the caller's retry decides;
- separate connect and read timeouts;
- TLS verified against REQUESTS_CA_BUNDLE or SSL_CERT_FILE, else certifi's bundle, else the
  system's store;
- HTTP_PROXY / HTTPS_PROXY with NO_PROXY (http:// proxies; HTTPS through CONNECT), with
  credentials from the proxy URL. All read once, when the transport is made.
"""
from __future__ import annotations

import base64
import http.client
import json as jsonlib
import os
import select
import ssl
import threading
import urllib.request
from dataclasses import dataclass
from typing import Any, Mapping, Sequence
from urllib.parse import unquote, urlencode, urlsplit

from . import http11

Params = Mapping[str, Any] | Sequence[tuple[str, Any]] | None
Origin = tuple[str, str, int]

IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
_DEAD = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError, ConnectionAbortedError)


@dataclass
class _Conn:
    """One pooled connection: http.client made it (TCP, tunnel, TLS); http11 speaks over it."""

    http: http.client.HTTPConnection
    reader: http11.Reader

    def close(self) -> None:
        self.http.close()


class TransportError(Exception):
    """No answer: `timeout` tells a timeout from a refused or broken connection."""

    def __init__(self, kind: str, timeout: bool) -> None:
        super().__init__(kind)
        self.timeout = timeout


@dataclass
class Answer:
    status: int
    reason: str
    headers: Mapping[str, str]
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return jsonlib.loads(self.content)


def _ca_bundle() -> str | None:
    explicit = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("SSL_CERT_FILE")
    if explicit:
        return explicit
    try:
        import certifi
    except ImportError:  # the system's default store
        return None
    return certifi.where()


def _closed(conn: _Conn) -> bool:
    """An idle keep-alive socket with something to read has been closed (or spoken to) by the server."""
    sock = conn.http.sock
    if sock is None or conn.reader.buf:
        return True
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(0))


class Transport:
    def __init__(self, timeout: float | tuple[float, float], maxsize: int = 32) -> None:
        self.connect_timeout, self.read_timeout = timeout if isinstance(timeout, tuple) else (timeout, timeout)
        self.maxsize = maxsize
        self.headers: dict[str, str] = {}  # sent with every call (e.g. a sandbox's acting user)
        self._proxies = {scheme: urlsplit(url) for scheme, url in urllib.request.getproxies().items()
                         if scheme in ("http", "https") and url.startswith("http://")}
        self._tls: ssl.SSLContext | None = None
        self._idle: dict[Origin, list[_Conn]] = {}
        self._lock = threading.Lock()
        self._pid = os.getpid()

    def request(self, method: str, url: str, params: Params, json: Any, headers: Mapping[str, str]) -> Answer:
        parts = urlsplit(url)
        scheme, host = parts.scheme, parts.hostname or ""
        origin = (scheme, host, parts.port or (443 if scheme == "https" else 80))
        host_header = parts.netloc.rpartition("@")[2]
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        if params:
            pairs = params.items() if isinstance(params, Mapping) else params
            target += ("&" if "?" in target else "?") + urlencode([tuple(pair) for pair in pairs], doseq=True)
        sent = {**self.headers, **headers}
        body = None
        if json is not None:
            body = jsonlib.dumps(json, separators=(",", ":")).encode()
            sent["Content-Type"] = "application/json"
        proxy = self._proxy(scheme, host)
        if proxy is not None and scheme == "http":  # a plain proxy takes the absolute URL
            target = f"http://{host_header}{target}"
            sent.update(self._proxy_auth(proxy))
        try:
            wire = http11.request_bytes(method, target, host_header, sent, body)
        except http.client.InvalidURL as exc:
            raise TransportError(f"InvalidURL: {exc}"[:200], timeout=False) from None
        conn = self._checkout(origin)
        try:
            try:
                response = self._exchange(conn or self._connect(origin, proxy), origin, method, wire)
            except _DEAD:
                if conn is None or method not in IDEMPOTENT:
                    raise
                response = self._exchange(self._connect(origin, proxy), origin, method, wire)
        except TimeoutError as exc:
            raise TransportError(f"{type(exc).__name__}: no answer within the timeout", timeout=True) from None
        except (OSError, http.client.HTTPException) as exc:
            raise TransportError(f"{type(exc).__name__}: {exc}"[:200], timeout=False) from None
        return response

    def _exchange(self, conn: _Conn, origin: Origin, method: str, wire: bytes) -> Answer:
        try:
            conn.reader.sock.sendall(wire)
            status, reason, headers, content, will_close = http11.read_response(conn.reader, method)
        except BaseException:
            conn.close()
            raise
        if will_close:
            conn.close()
        else:
            self._checkin(origin, conn)
        return Answer(status, reason, headers, content)

    # -- the pool ------------------------------------------------------------------------------

    def _checkout(self, origin: Origin) -> _Conn | None:
        if os.getpid() != self._pid:  # a forked child: the parent's sockets are not ours to use
            with self._lock:
                self._idle, self._pid = {}, os.getpid()
        while True:
            with self._lock:
                idle = self._idle.get(origin)
                conn = idle.pop() if idle else None
            if conn is None or not _closed(conn):
                return conn
            conn.close()

    def _checkin(self, origin: Origin, conn: _Conn) -> None:
        with self._lock:
            idle = self._idle.setdefault(origin, [])
            if len(idle) < self.maxsize:
                idle.append(conn)
                return
        conn.close()

    def _connect(self, origin: Origin, proxy: Any) -> _Conn:
        scheme, host, port = origin
        address = (proxy.hostname, proxy.port or 80) if proxy is not None else (host, port)
        conn: http.client.HTTPConnection
        if scheme == "https":
            conn = http.client.HTTPSConnection(*address, timeout=self.connect_timeout, context=self._context())
            if proxy is not None:
                conn.set_tunnel(host, port, headers=self._proxy_auth(proxy))
        else:
            conn = http.client.HTTPConnection(*address, timeout=self.connect_timeout)
        conn.connect()  # TCP, the tunnel and TLS under the connect timeout; answers under the read timeout
        assert conn.sock is not None
        conn.sock.settimeout(self.read_timeout)
        return _Conn(conn, http11.Reader(conn.sock))

    def _context(self) -> ssl.SSLContext:
        if self._tls is None:
            self._tls = ssl.create_default_context(cafile=_ca_bundle())
        return self._tls

    def _proxy(self, scheme: str, host: str) -> Any:
        proxy = self._proxies.get(scheme)
        return None if proxy is None or urllib.request.proxy_bypass(host) else proxy

    @staticmethod
    def _proxy_auth(proxy: Any) -> dict[str, str]:
        if not proxy.username:
            return {}
        pair = f"{unquote(proxy.username)}:{unquote(proxy.password or '')}".encode()
        return {"Proxy-Authorization": "Basic " + base64.b64encode(pair).decode()}

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, {}
        for conns in idle.values():
            for conn in conns:
                conn.close()
