"""prepr.http11 against a real socket peer that answers with canned bytes: framing, keep-alive,
interim answers, and every malformed answer refused."""
from __future__ import annotations

import http.client
import socket
import threading
from typing import Iterator

import pytest

from prepr import http11
from prepr.transport import Transport, TransportError


class Canned:
    """A local TCP server: for each connection, reads one request head per canned answer and
    sends that answer's bytes; records the requests; closes after the last answer."""

    def __init__(self, answers: list[bytes], close_after: bool = True) -> None:
        self.answers, self.close_after = answers, close_after
        self.requests: list[bytes] = []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                buf = b""
                for answer in self.answers:
                    while b"\r\n\r\n" not in buf:
                        chunk = conn.recv(65536)
                        if not chunk:
                            return
                        buf += chunk
                    head, _, buf = buf.partition(b"\r\n\r\n")
                    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                                   if line.lower().startswith(b"content-length:")), 0)
                    while len(buf) < length:
                        buf += conn.recv(65536)
                    self.requests.append(head + b"\r\n\r\n" + buf[:length])
                    buf = buf[length:]
                    conn.sendall(answer)
                if not self.close_after:
                    conn.recv(1)  # hold the connection until the client goes

    def connect(self) -> http11.Reader:
        return http11.Reader(socket.create_connection(("127.0.0.1", self.port), timeout=5))

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def canned() -> Iterator:
    servers: list[Canned] = []

    def start(*answers: bytes, close_after: bool = True) -> Canned:
        servers.append(Canned(list(answers), close_after))
        return servers[-1]
    yield start
    for server in servers:
        server.close()


def exchange(reader: http11.Reader, method: str = "GET") -> tuple[int, str, http11.Headers, bytes, bool]:
    reader.sock.sendall(http11.request_bytes(method, "/x", "h", {}, None))
    return http11.read_response(reader, method)


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

FRAMED = [  # (answer bytes, method, status, body, will_close)
    (OK, "GET", 200, b"ok", False),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nX-Trailer: t\r\n\r\n",
     "GET", 200, b"abcde", False),
    (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end", "GET", 200, b"until the end", True),
    (b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", "GET", 200, b"ok", True),
    (b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok", "GET", 200, b"ok", False),
    (b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", "GET", 200, b"ok", True),
    (b"HTTP/1.1 204 No Content\r\n\r\n", "DELETE", 204, b"", False),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n", "HEAD", 200, b"", False),
    (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok", "POST", 201, b"ok", False),
    (b"HTTP/1.1 429 Too Many\r\ncontent-length: 0\r\nretry-after: 7\r\n\r\n", "GET", 429, b"", False),
    (b"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", "GET", 200, b"", False),  # no reason phrase
]


@pytest.mark.parametrize("answer, method, status, body, will_close", FRAMED)
def test_bodies_are_framed_as_the_server_says(canned, answer, method, status, body, will_close):
    server = canned(*((answer,) if will_close else (answer, OK)))
    reader = server.connect()
    got = exchange(reader, method)
    assert (got[0], got[3], got[4]) == (status, body, will_close)
    if not will_close:  # the stream is in step: the next answer on the same connection reads cleanly
        assert exchange(reader)[3] == b"ok"


def test_headers_are_case_insensitive_joined_and_unfolded(canned):
    server = canned(b"HTTP/1.1 200 OK\r\nX-Prepr-RateLimit-Remaining: 0\r\nVia: a\r\nvia: b\r\n"
                    b"X-Long: one\r\n  two\r\nContent-Length: 0\r\n\r\n")
    _, reason, headers, _, _ = exchange(server.connect())
    assert reason == "OK"
    assert headers.get("x-prepr-ratelimit-remaining") == "0" and headers["X-PREPR-RATELIMIT-REMAINING"] == "0"
    assert headers["Via"] == "a, b" and headers["x-long"] == "one two"
    assert "content-length" in headers and "Retry-After" not in headers and headers.get("Retry-After") is None


@pytest.mark.parametrize("answer, error", [
    (b"", http.client.RemoteDisconnected),
    (b"SMTP ready\r\n\r\n", http11.ProtocolError),
    (b"HTTP/1.1 2000 OK\r\n\r\n", http11.ProtocolError),
    (b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", http11.ProtocolError),
    (b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-%d: y\r\n" % n for n in range(101)) + b"\r\n", http11.ProtocolError),
    (b"HTTP/1.1 200 OK\r\nX-Big: " + b"b" * 70000, http11.ProtocolError),
    (b"HTTP/1.1 200 OK\r\nContent-Length: ten\r\n\r\n", http11.ProtocolError),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", http.client.IncompleteRead),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", http11.ProtocolError),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n", http11.ProtocolError),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n", http11.ProtocolError),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", http.client.IncompleteRead),
    (b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (http11.MAX_BODY + 1), http11.ProtocolError),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n" % (http11.MAX_BODY + 1), http11.ProtocolError),
])
def test_malformed_or_cut_answers_raise(canned, answer, error):
    server = canned(answer)
    with pytest.raises(error):
        exchange(server.connect())


def test_requests_are_one_well_formed_write_and_cannot_be_smuggled_into():
    wire = http11.request_bytes("PUT", "/publications/1?x=1", "api.example:8443", {"Authorization": "Bearer t"},
                                b'{"a":1}')
    assert wire == (b"PUT /publications/1?x=1 HTTP/1.1\r\nHost: api.example:8443\r\nAccept-Encoding: identity\r\n"
                    b"Authorization: Bearer t\r\nContent-Length: 7\r\n\r\n{\"a\":1}")
    assert b"Content-Length: 0" in http11.request_bytes("POST", "/x", "h", {}, None)
    assert b"Content-Length" not in http11.request_bytes("GET", "/x", "h", {}, None)
    with pytest.raises(http.client.InvalidURL):
        http11.request_bytes("GET", "/publications/1 HTTP/1.1\r\nX-Evil: 1", "h", {}, None)
    for name, value in (("X-Ok", "a\r\nX-Evil: 1"), ("X-Ok", "a\nb"), ("Bad Name", "v"), ("X:y", "v")):
        with pytest.raises(ValueError):
            http11.request_bytes("GET", "/x", "h", {name: value}, None)


def test_the_transport_drops_a_connection_whose_answer_was_malformed(canned):
    server = canned(b"HTTP/1.1 200 OK\r\nContent-Length: nope\r\n\r\n")
    good = canned(OK, OK, close_after=False)
    transport = Transport((2, 2))
    with pytest.raises(TransportError, match="ProtocolError"):
        transport.request("GET", f"http://127.0.0.1:{server.port}/x", None, None, {})
    assert transport._idle.get(("http", "127.0.0.1", server.port)) in (None, [])  # noqa: SLF001
    for _ in range(2):
        assert transport.request("GET", f"http://127.0.0.1:{good.port}/x", None, None, {}).content == b"ok"
    assert len(good.requests) == 2 and good.requests[0].startswith(b"GET /x HTTP/1.1\r\nHost: 127.0.0.1:")
    with pytest.raises(TransportError, match="InvalidURL"):
        transport.request("GET", f"http://127.0.0.1:{good.port}/a b", None, None, {})
