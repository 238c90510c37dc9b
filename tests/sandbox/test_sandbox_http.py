"""The sandbox's HTTP server, spoken to over raw sockets: keep-alive, bodies, limits, bad input."""
from __future__ import annotations

import json
import signal
import socket
import threading
import time

import pytest

from tests.conftest import SANDBOX_TOKEN

AUTH = f"Authorization: Bearer {SANDBOX_TOKEN}\r\n"


class Conn:
    """One TCP connection; reads whole HTTP/1.1 responses (status, headers, body)."""

    def __init__(self, url: str) -> None:
        host, port = url.removeprefix("http://").split(":")
        self.sock = socket.create_connection((host, int(port)), timeout=10)
        self.buf = b""

    def send(self, raw: str | bytes) -> None:
        self.sock.sendall(raw.encode() if isinstance(raw, str) else raw)

    def _fill(self) -> bool:
        chunk = self.sock.recv(65536)
        self.buf += chunk
        return bool(chunk)

    def response(self, head_only: bool = False) -> tuple[int, dict[str, str], bytes]:
        while b"\r\n\r\n" not in self.buf:
            if not self._fill():
                raise ConnectionError("closed before a response")
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
        length = 0 if head_only else int(headers.get("content-length", 0))
        while len(self.buf) < length:
            self._fill()
        body, self.buf = self.buf[:length], self.buf[length:]
        return int(status_line.split()[1]), headers, body

    def closed_by_peer(self) -> bool:
        self.sock.settimeout(5)
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def conn(sandbox):
    c = Conn(sandbox.url)
    yield c
    c.close()


def test_keep_alive_serves_many_requests_on_one_connection(conn):
    for _ in range(3):
        conn.send(f"GET /tags?limit=1 HTTP/1.1\r\nHost: x\r\n{AUTH}\r\n")
        status, headers, body = conn.response()
        assert status == 200 and json.loads(body)["limit"] == 1 and headers.get("connection") != "close"
    # pipelined: both answered, in order
    conn.send(f"GET /channels HTTP/1.1\r\nHost: x\r\n{AUTH}\r\nGET /nope HTTP/1.1\r\nHost: x\r\n{AUTH}\r\n")
    assert conn.response()[0] == 200 and conn.response()[0] == 404


def test_connection_close_and_http_1_0_close_after_the_answer(sandbox):
    for request in ("GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "GET /health HTTP/1.0\r\n\r\n"):
        c = Conn(sandbox.url)
        c.send(request)
        assert c.response()[0] == 200 and c.closed_by_peer()
        c.close()


def test_chunked_and_100_continue_bodies_are_read(conn, sandbox):
    body = json.dumps({"body": "Chunked tag"}).encode()
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (body[:5], body[5:])) + b"0\r\n\r\n"
    conn.send(f"POST /tags HTTP/1.1\r\nHost: x\r\n{AUTH}Content-Type: application/json\r\n"
              "Transfer-Encoding: chunked\r\n\r\n".encode() + chunks)
    status, _, answer = conn.response()
    assert status == 201 and json.loads(answer)["body"] == "Chunked tag"
    body = json.dumps({"body": "Continued tag"}).encode()
    conn.send(f"POST /tags HTTP/1.1\r\nHost: x\r\n{AUTH}Content-Type: application/json\r\n"
              f"Content-Length: {len(body)}\r\nExpect: 100-continue\r\n\r\n")
    assert conn.response(head_only=True)[0] == 100
    conn.send(body)
    status, _, answer = conn.response()
    assert status == 201 and json.loads(answer)["body"] == "Continued tag"
    # the connection is still good for the next request
    conn.send(f"GET /tags?limit=100 HTTP/1.1\r\nHost: x\r\n{AUTH}\r\n")
    names = {t["body"] for t in json.loads(conn.response()[2])["items"]}
    assert {"Chunked tag", "Continued tag"} <= names


def test_head_and_204_answers_have_no_body(conn, sandbox):
    conn.send(f"HEAD /tags HTTP/1.1\r\nHost: x\r\n{AUTH}\r\n")
    status, headers, _ = conn.response(head_only=True)
    assert status == 200 and int(headers["content-length"]) == 0
    pub = sandbox.client().create_publication({"model": {"body": "Article"},
                                               "items": {"en-GB": {"title": {"body": "Gone soon"}}}})
    conn.send(f"DELETE /publications/{pub['id']} HTTP/1.1\r\nHost: x\r\n{AUTH}\r\n")
    status, headers, body = conn.response(head_only=True)
    assert status == 204 and body == b"" and "content-length" not in headers
    conn.send("GET /health HTTP/1.1\r\nHost: x\r\n\r\n")  # nothing was left in the stream
    assert conn.response()[0] == 200


@pytest.mark.parametrize("raw, status", [
    (b"NONSENSE\r\n\r\n", 400),
    (b"GET /health HTTP/9.9\r\n\r\n", 505),
    (b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n", 414),
    (b"GET /health HTTP/1.1\r\nX-Big: " + b"b" * 70000 + b"\r\n\r\n", 431),
    (b"GET /health HTTP/1.1\r\n" + b"".join(b"X-%d: y\r\n" % n for n in range(120)) + b"\r\n", 431),
    (b"POST /tags HTTP/1.1\r\nContent-Length: ten\r\n\r\n", 400),
    (b"POST /tags HTTP/1.1\r\nContent-Length: 999999999999\r\n\r\n", 413),
    (b"POST /tags HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
    (b"POST /tags HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nabc", 400),
])
def test_malformed_requests_get_a_4xx_and_the_connection_closes(sandbox, raw, status):
    c = Conn(sandbox.url)
    try:
        c.send(raw)
        assert c.response()[0] == status
        assert c.closed_by_peer()
    finally:
        c.close()
    assert Conn(sandbox.url).sock  # the server is still up for the next client


def test_a_slow_request_does_not_hold_up_other_connections(sandbox):
    sandbox.fault("/channels", latency_ms=1500)
    slow = Conn(sandbox.url)
    slow.send(f"GET /channels HTTP/1.1\r\nHost: x\r\n{AUTH}\r\n")
    started = time.monotonic()
    fast = Conn(sandbox.url)
    fast.send(f"GET /tags HTTP/1.1\r\nHost: x\r\n{AUTH}\r\n")
    assert fast.response()[0] == 200 and time.monotonic() - started < 1.0
    assert slow.response()[0] == 200 and time.monotonic() - started >= 1.4
    slow.close(), fast.close()


def test_idle_and_vanishing_clients_do_not_disturb_the_server(sandbox):
    idle = [Conn(sandbox.url) for _ in range(20)]  # connected, never speak
    half = Conn(sandbox.url)
    half.send(b"GET /health HTTP/1.1\r\nHo")       # then vanishes mid-request
    half.close()
    results: list[int] = []

    def client() -> None:
        c = Conn(sandbox.url)
        for _ in range(20):
            c.send(f"GET /tags?limit=1 HTTP/1.1\r\nHost: x\r\n{AUTH}\r\n")
            results.append(c.response()[0])
        c.close()

    threads = [threading.Thread(target=client) for _ in range(4)]
    [t.start() for t in threads]
    [t.join(30) for t in threads]
    assert results == [200] * 80
    for c in idle:
        c.close()


def test_sigterm_stops_it_promptly_and_cleanly(sandbox, processes):
    conn = Conn(sandbox.url)  # an open keep-alive connection must not hold the shutdown up
    conn.send("GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    assert conn.response()[0] == 200
    started = time.monotonic()
    sandbox.proc.send_signal(signal.SIGTERM)
    assert sandbox.proc.wait(10) == 0 and time.monotonic() - started < 3
    conn.close()


def test_connections_beyond_the_cap_get_503_until_one_frees(sandbox):
    from sandbox.server import MAX_CONNECTIONS

    held = [Conn(sandbox.url) for _ in range(MAX_CONNECTIONS)]
    for c in held[:3]:  # each of them is served: the cap counts connections, not requests
        c.send("GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert c.response()[0] == 200
    extra = Conn(sandbox.url)
    status, headers, _ = extra.response()
    assert status == 503 and headers["retry-after"] == "1" and extra.closed_by_peer()
    extra.close()
    held.pop().close()
    served, deadline = False, time.monotonic() + 5
    while not served and time.monotonic() < deadline:  # the freed slot goes to the next client
        again = Conn(sandbox.url)
        try:
            again.send("GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            served = again.response()[0] == 200
        except OSError:
            pass  # still refused: the slot frees once the server has seen the close
        finally:
            again.close()
        time.sleep(0.05)
    assert served
    for c in held:
        c.close()
