"""Running the sandbox: one process, a thread per connection, HTTP/1.1 keep-alive.

The standard library's `http.server` parses every request (request line, header limits,
`Expect: 100-continue`, keep-alive rules); this module only turns it into a WSGI call. A
thread per connection answers a keep-alive client on the thread that already waits on its
socket: no hand-off between a poller and a pool per request, which is where a general-purpose
threaded server spends most of its time on small API calls (docs/performance.md).
"""
from __future__ import annotations

import io
import logging
import os
import secrets
import signal
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Iterable
from urllib.parse import unquote_to_bytes

from .app import create_app

log = logging.getLogger("sandbox.http")
KEEPALIVE = 75.0          # seconds an idle keep-alive connection is kept open
MAX_CONNECTIONS = 256     # one thread each; beyond this a new connection gets 503 and is closed
MAX_BODY = 64 * 1024 * 1024
MAX_LINE = 65536


def resolve_token(token: str | None, echo: Callable[[str], None] = print) -> str:
    """PREPR_ACCESS_TOKEN, or a fresh one that is printed once so the user can copy it."""
    token = token or os.environ.get("PREPR_ACCESS_TOKEN")
    if token:
        return token
    token = "sandbox-" + secrets.token_urlsafe(24)
    echo(f"No PREPR_ACCESS_TOKEN set; this sandbox accepts: {token}")
    return token


class BadBody(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class WSGIHandler(BaseHTTPRequestHandler):
    """One connection: requests in turn until the client closes, asks to, or idles KEEPALIVE."""

    protocol_version = "HTTP/1.1"
    default_request_version = "HTTP/1.0"  # errors get a status line; HTTP/0.9 is not served
    timeout = KEEPALIVE
    server: "Server"

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def handle_one_request(self) -> None:
        try:
            self.raw_requestline = self.rfile.readline(MAX_LINE + 1)
        except (TimeoutError, ConnectionError):
            self.close_connection = True
            return
        arrived = time.time()
        if len(self.raw_requestline) > MAX_LINE:
            self.requestline, self.request_version, self.command = "", "", ""
            self.send_error(414)
            return
        if not self.raw_requestline:
            self.close_connection = True
            return
        if not self.parse_request():  # answered 400/431/505 itself
            return
        if len(self.requestline.split()) != 3:
            self.send_error(400, "Bad request syntax")
            return
        try:
            body = self._body()
        except BadBody as exc:
            self.close_connection = True  # the rest of the stream cannot be trusted
            self.send_error(exc.status, str(exc))
            return
        self._respond(*self._call(self._environ(body, arrived)))

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return self._chunked()
        length = self.headers.get("Content-Length")
        if length is None:
            return b""
        if not length.isdigit():
            raise BadBody(400, "bad Content-Length")
        if int(length) > MAX_BODY:
            raise BadBody(413, "body too large")
        body = self.rfile.read(int(length))
        if len(body) < int(length):
            raise BadBody(400, "body shorter than its Content-Length")
        return body

    def _chunked(self) -> bytes:
        parts, size = [], 0
        while True:
            line = self.rfile.readline(MAX_LINE + 1)
            try:
                chunk = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                chunk = -1
            if chunk < 0:
                raise BadBody(400, "bad chunk size")
            if chunk == 0:
                while self.rfile.readline(MAX_LINE + 1) not in (b"\r\n", b"\n", b""):
                    pass  # trailers: ignored
                return b"".join(parts)
            size += chunk
            if size > MAX_BODY:
                raise BadBody(413, "body too large")
            parts.append(self.rfile.read(chunk))
            self.rfile.readline(MAX_LINE + 1)

    def _environ(self, body: bytes, arrived: float) -> dict[str, Any]:
        path, _, query = self.path.partition("?")
        host, port = self.server.server_address[:2]
        environ: dict[str, Any] = {
            "REQUEST_METHOD": self.command, "SCRIPT_NAME": "", "PATH_INFO": _unquote(path), "QUERY_STRING": query,
            "SERVER_NAME": str(host), "SERVER_PORT": str(port), "SERVER_PROTOCOL": self.request_version,
            "REMOTE_ADDR": self.client_address[0], "REMOTE_PORT": str(self.client_address[1]),
            "CONTENT_LENGTH": str(len(body)) if body else "",
            "wsgi.version": (1, 0), "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr, "wsgi.multithread": True, "wsgi.multiprocess": False, "wsgi.run_once": False,
            "sandbox.arrived": arrived,
        }
        for name, value in self.headers.items():
            key = name.upper().replace("-", "_")
            if key in ("CONTENT_LENGTH", "TRANSFER_ENCODING"):
                continue
            key = key if key == "CONTENT_TYPE" else f"HTTP_{key}"
            environ[key] = f"{environ[key]},{value}" if key in environ else value
        return environ

    def _call(self, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
        started: list[Any] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable:
            started[:] = [status, headers]
            return lambda data: None  # the legacy write(); the app never uses it

        try:
            result: Iterable[bytes] = self.server.app(environ, start_response)
            try:
                data = b"".join(result)
            finally:
                getattr(result, "close", lambda: None)()
        except Exception:  # Flask answers its own errors; this is a bug in the server glue
            log.exception("unhandled error in %s %s", self.command, self.path)
            self.close_connection = True
            return "500 Internal Server Error", [("Content-Type", "text/plain")], b"internal error\n"
        return started[0], started[1], data

    def _respond(self, status: str, headers: list[tuple[str, str]], data: bytes) -> None:
        code = int(status[:3])
        if self.command == "HEAD" or code in (204, 304) or code < 200:
            data = b""
        lines = [f"HTTP/1.1 {status}"]
        lines += [f"{name}: {value}" for name, value in headers if name.lower() not in ("content-length", "connection")]
        if code not in (204, 304):
            lines.append(f"Content-Length: {len(data)}")
        if self.close_connection:
            lines.append("Connection: close")
        elif self.request_version == "HTTP/1.0":
            lines.append("Connection: keep-alive")  # it asked for it
        try:
            self.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + data)
        except (ConnectionError, TimeoutError):
            self.close_connection = True

    def log_request(self, code: Any = "-", size: Any = "-") -> None:
        """No access log: the request log is /_sandbox/requests."""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        """Malformed requests, answered 4xx by the standard library."""
        log.warning("%s %s", self.client_address[0], format % args)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], app: Callable) -> None:
        self.app = app
        self.slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        super().__init__(address, WSGIHandler)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self.slots.acquire(blocking=False):
            try:
                request.sendall(b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\n"
                                b"Connection: close\r\n\r\n")
            except OSError:
                pass
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.warning("connection from %s failed", client_address[0], exc_info=True)


def _unquote(path: str) -> str:
    """PATH_INFO as WSGI wants it: percent-decoded bytes, as latin-1 text (PEP 3333)."""
    return unquote_to_bytes(path).decode("latin-1") if "%" in path else path


def serve(port: int, data_dir: str | Path, *, host: str = "127.0.0.1", token: str | None = None,
          user_id: str | None = None, webhook_url: str | None = None, webhook_secret: str | None = None,
          seed_file: str | Path | None = None, ready: Callable[[str], None] | None = None, **remote: Any) -> None:
    """Serve until SIGINT or SIGTERM. `ready(url)` is called once the socket is listening.

    One process: the content, faults and request log are that process's state."""
    token = resolve_token(token)
    app = create_app(data_dir, token, user_id=user_id, webhook_url=webhook_url, webhook_secret=webhook_secret,
                     seed_file=seed_file, **remote)
    server = Server((host, port), app)
    url = f"http://{host}:{server.server_address[1]}"
    (ready or (lambda u: print(f"Prepr sandbox on {u} (data in {Path(data_dir) / 'sandbox.sqlite3'})",
                               file=sys.stderr, flush=True)))(url)

    def _stop(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt  # leaves serve_forever in the main thread

    previous = signal.signal(signal.SIGTERM, _stop)
    try:
        server.serve_forever(poll_interval=0.5)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        server.server_close()
        app.extensions["sandbox"]["store"].close()
