"""HTTP/1.1 on a connected socket: a request written in one send, a response read from a buffer.

http.client still connects (TCP, CONNECT tunnels, TLS); the exchange is this module's, because
http.client parses each response's headers with the email package and builds a file object per
response: about 110 µs of CPU per call to a local server, where the socket work itself is about
40 µs (docs/performance.md). What it reads: a status line, headers (at most MAX_HEADERS lines
of at most MAX_LINE bytes), 1xx interim answers (skipped), and a body of at most MAX_BODY
framed by `Transfer-Encoding: chunked`, `Content-Length` or the end of the connection; HEAD,
204 and 304 answers have none. Anything else raises ProtocolError, and the caller drops the connection.
"""
from __future__ import annotations

import http.client
import re
import socket
from typing import Iterable

MAX_LINE = 65536
MAX_HEADERS = 100
MAX_BODY = 64 * 1024 * 1024  # a page of 100 publications is a few MB; a server streaming on is not Prepr
_BAD_TARGET = re.compile(r"[\x00-\x20\x7f]")      # what http.client refuses in a request target too
_BAD_VALUE = re.compile(r"[\r\n\x00]")
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


class ProtocolError(http.client.HTTPException):
    """The server's answer is not HTTP/1.x as this client reads it."""


class Headers(dict):
    """Response headers, looked up case-insensitively; repeated headers joined with ", "."""

    def __init__(self, pairs: Iterable[tuple[str, str]] = ()) -> None:
        super().__init__()
        for name, value in pairs:
            key = name.lower()
            dict.__setitem__(self, key, f"{dict.__getitem__(self, key)}, {value}" if key in self else value)

    def __getitem__(self, name: str) -> str:
        return dict.__getitem__(self, name.lower())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and dict.__contains__(self, name.lower())

    def get(self, name: str, default: str | None = None) -> str | None:  # type: ignore[override]
        return dict.get(self, name.lower(), default)


def request_bytes(method: str, target: str, host: str, headers: dict[str, str], body: bytes | None) -> bytes:
    """The request head and body; refuses what would let a value smuggle in another header."""
    if _BAD_TARGET.search(target):
        raise http.client.InvalidURL(f"control characters in the request target {target[:80]!r}")
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}", "Accept-Encoding: identity"]
    for name, value in headers.items():
        if not _TOKEN.fullmatch(name) or _BAD_VALUE.search(value):
            raise ValueError(f"invalid header {name!r}")
        lines.append(f"{name}: {value}")
    if body is not None or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body or b'')}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")


class Reader:
    """Buffered reads from one socket, kept across the responses of a keep-alive connection."""

    __slots__ = ("sock", "buf")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = bytearray()

    def fill(self) -> bool:
        """Read what the socket has; False at its end."""
        chunk = self.sock.recv(65536)
        self.buf += chunk
        return bool(chunk)

    def line(self) -> bytes:
        while True:
            end = self.buf.find(b"\n")
            if end >= 0:
                line = bytes(self.buf[:end + 1])
                del self.buf[:end + 1]
                return line
            if len(self.buf) > MAX_LINE:
                raise ProtocolError("a status or header line is too long")
            if not self.fill():
                raise http.client.IncompleteRead(bytes(self.buf))

    def exactly(self, n: int) -> bytes:
        if n > MAX_BODY:
            raise ProtocolError(f"a body of {n} bytes is more than this client reads")
        while len(self.buf) < n:
            if not self.fill():
                raise http.client.IncompleteRead(bytes(self.buf), n - len(self.buf))
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def rest(self) -> bytes:
        while self.fill():
            if len(self.buf) > MAX_BODY:
                raise ProtocolError("the body goes on past what this client reads")
        data = bytes(self.buf)
        self.buf.clear()
        return data


def read_response(reader: Reader, method: str) -> tuple[int, str, Headers, bytes, bool]:
    """(status, reason, headers, body, will_close) of the next response on the connection."""
    while True:
        if not reader.buf and not reader.fill():  # nothing at all: the server hung up
            raise http.client.RemoteDisconnected("the server closed the connection without an answer")
        version, status, reason = _status(reader.line())
        headers = _headers(reader)
        if not 100 <= status < 200 or status == 101:
            break  # 1xx answers are interim: the real one follows
    connection = (headers.get("connection") or "").lower()
    will_close = "close" in connection or (version == "HTTP/1.0" and "keep-alive" not in connection)
    if method == "HEAD" or status in (204, 304) or status < 200:
        body = b""
    elif "chunked" in (headers.get("transfer-encoding") or "").lower():
        body = _chunked(reader)
    elif "content-length" in headers:
        length = headers["content-length"].split(",")[0].strip()
        if not length.isdigit():
            raise ProtocolError(f"bad Content-Length {headers['content-length']!r}")
        body = reader.exactly(int(length))
    else:
        body, will_close = reader.rest(), True
    return status, reason, headers, body, will_close


def _status(line: bytes) -> tuple[str, int, str]:
    parts = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not (len(parts[1]) == 3 and parts[1].isdigit()):
        raise ProtocolError(f"bad status line {line[:80]!r}")
    return parts[0], int(parts[1]), parts[2] if len(parts) > 2 else ""


def _headers(reader: Reader) -> Headers:
    pairs: list[tuple[str, str]] = []
    while True:
        line = reader.line()
        if line in (b"\r\n", b"\n"):
            return Headers(pairs)
        if len(pairs) >= MAX_HEADERS:
            raise ProtocolError(f"more than {MAX_HEADERS} headers")
        text = line.decode("latin-1").rstrip("\r\n")
        if text[:1] in (" ", "\t") and pairs:  # an obsolete folded continuation line
            pairs[-1] = (pairs[-1][0], f"{pairs[-1][1]} {text.strip()}")
            continue
        name, sep, value = text.partition(":")
        if not sep or not _TOKEN.fullmatch(name):
            raise ProtocolError(f"bad header line {line[:80]!r}")
        pairs.append((name, value.strip()))


def _chunked(reader: Reader) -> bytes:
    parts: list[bytes] = []
    total = 0
    while True:
        size_text = reader.line().split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            size = -1
        if size < 0:
            raise ProtocolError(f"bad chunk size {size_text[:20]!r}")
        if size == 0:
            while reader.line() not in (b"\r\n", b"\n"):
                pass  # trailers
            return b"".join(parts)
        total += size
        if total > MAX_BODY:
            raise ProtocolError("the body goes on past what this client reads")
        parts.append(reader.exactly(size))
        if reader.line() not in (b"\r\n", b"\n"):
            raise ProtocolError("a chunk is longer than its size")
