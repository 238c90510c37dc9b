"""The client's HTTP session against real local servers: keep-alive reuse, gzip, connections the
server closed, no retries of its own, a proxy (plain and CONNECT) with NO_PROXY, TLS verified
against a CA bundle, timeouts, a body limit."""
from __future__ import annotations

import gzip
import http.server
import select
import shutil
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest

from prepr import session as prepr_session
from prepr.session import NoAnswer, exchange, make_session


class Recorder(http.server.BaseHTTPRequestHandler):
    """Answers every request with 200 and a small JSON body; records what it saw."""

    protocol_version = "HTTP/1.1"
    seen: list[dict]
    drop_reused = 0  # this many requests on a reused connection are read, then the connection is dropped
    padding = 0  # spaces after the JSON body
    close_idle_after = 0.0  # close a keep-alive connection this long after each answer

    def setup(self) -> None:
        super().setup()
        self.served = 0

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        server = self.server
        if self.served and server.drop_reused > 0:  # type: ignore[attr-defined]
            server.drop_reused -= 1  # type: ignore[attr-defined]
            server.seen.append({"dropped": self.command})  # type: ignore[attr-defined]
            self.close_connection = True
            return
        server.seen.append({"port": self.client_address[1], "method": self.command, "target": self.path,  # type: ignore[attr-defined]
                            "headers": dict(self.headers), "body": body})
        self.served += 1
        payload = b'{"ok": true}' + b" " * server.padding  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        if "gzip" in self.headers.get("Accept-Encoding", ""):
            payload = gzip.compress(payload)
            self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)
        self.wfile.flush()
        if server.close_idle_after:  # type: ignore[attr-defined]
            ready, _, _ = select.select([self.connection], [], [], server.close_idle_after)  # type: ignore[attr-defined]
            if not ready:
                self.close_connection = True

    do_GET = do_PUT = do_POST = do_DELETE = _answer

    def log_message(self, *args: object) -> None:
        pass


def _serve(handler: type, context: ssl.SSLContext | None = None) -> Iterator[http.server.ThreadingHTTPServer]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    server.seen = []  # type: ignore[attr-defined]
    server.drop_reused = 0  # type: ignore[attr-defined]
    server.close_idle_after = 0.0  # type: ignore[attr-defined]
    server.padding = 0  # type: ignore[attr-defined]
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def origin() -> Iterator[http.server.ThreadingHTTPServer]:
    yield from _serve(Recorder)


def _url(server: http.server.ThreadingHTTPServer, scheme: str = "http", host: str = "127.0.0.1") -> str:
    return f"{scheme}://{host}:{server.server_address[1]}"


def _get(url: str, session=None, timeout=(2, 2), method: str = "GET", json=None, **kw):
    return exchange(session or make_session(), method, url, kw.get("params"), json, kw.get("headers", {}), timeout)


def test_keep_alive_reuses_one_connection_and_sends_params_body_and_headers(origin):
    session = make_session()
    session.headers["X-Extra"] = "1"
    for n in range(5):
        answer = _get(_url(origin) + "/things?a=1", session, params=[("b", n)], headers={"Accept": "application/json"})
        assert answer.status == 200 and answer.json() == {"ok": True}
    _get(_url(origin) + "/things/1", session, method="PUT", json={"title": "é"})
    seen = origin.seen
    assert len({s["port"] for s in seen}) == 1, "every call should reuse the first connection"
    assert [s["target"] for s in seen[:2]] == ["/things?a=1&b=0", "/things?a=1&b=1"]
    assert seen[0]["headers"]["X-Extra"] == "1" and seen[0]["headers"]["Accept"] == "application/json"
    assert "gzip" in seen[0]["headers"]["Accept-Encoding"]  # and the gzipped answer was decoded above
    assert json_body(seen[-1]) == {"title": "é"} and seen[-1]["headers"]["Content-Type"] == "application/json"


def json_body(seen: dict) -> object:
    import json
    return json.loads(seen["body"])


def test_a_connection_the_server_closed_is_not_reused(origin):
    origin.close_idle_after = 0.05
    session = make_session()
    for method in ("GET", "POST", "PUT"):
        assert _get(_url(origin) + "/x", session, method=method, json=None if method == "GET" else {}).status == 200
        time.sleep(0.2)  # the server has closed the idle connection meanwhile
    assert [s["method"] for s in origin.seen] == ["GET", "POST", "PUT"]
    assert len({s["port"] for s in origin.seen}) == 3


@pytest.mark.parametrize("method", ["PUT", "POST"])
def test_a_connection_dropped_mid_call_is_not_retried_by_the_library(origin, method):
    session = make_session()
    _get(_url(origin) + "/warm", session)
    origin.drop_reused = 1
    with pytest.raises(NoAnswer) as info:
        _get(_url(origin) + "/call", session, method=method, json={"a": 1})
    assert not info.value.timeout
    assert [s.get("dropped") or s["target"] for s in origin.seen] == ["/warm", method], "sent once: our policy retries"
    assert _get(_url(origin) + "/after", session).status == 200  # the session goes on with a fresh connection


def test_timeouts_and_refusals():
    with socket.socket() as silent:  # accepts connections (backlog) but never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        started = time.monotonic()
        with pytest.raises(NoAnswer) as info:
            _get(f"http://127.0.0.1:{silent.getsockname()[1]}/", timeout=(1, 0.3))
        assert info.value.timeout and time.monotonic() - started < 2
        port = silent.getsockname()[1]
    with pytest.raises(NoAnswer) as refused:
        _get(f"http://127.0.0.1:{port}/", timeout=(1, 1))
    assert not refused.value.timeout and "refused" in str(refused.value).lower()


def test_a_body_that_stalls_midway_is_a_timeout():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)

        def stall() -> None:
            conn, _ = server.accept()
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"partial\"")
            time.sleep(1.5)
            conn.close()

        threading.Thread(target=stall, daemon=True).start()
        with pytest.raises(NoAnswer) as info:
            _get(f"http://127.0.0.1:{server.getsockname()[1]}/", timeout=(1, 0.3))
        assert info.value.timeout


def test_a_body_beyond_the_limit_is_refused(origin, monkeypatch):
    monkeypatch.setattr(prepr_session, "MAX_BODY", 1000)
    origin.padding = 999
    with pytest.raises(NoAnswer, match="larger than 1000 bytes") as info:
        _get(_url(origin) + "/big", headers={"Accept-Encoding": "identity"})
    assert not info.value.timeout
    origin.padding = 980
    assert _get(_url(origin) + "/fits").json() == {"ok": True}


def test_plain_proxy_gets_the_absolute_url_and_credentials(origin, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", f"http://user:p%40ss@127.0.0.1:{origin.server_address[1]}")
    for name in ("NO_PROXY", "no_proxy", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert _get("http://prepr.example:8080/publications?x=1").status == 200
    seen = origin.seen[0]
    assert seen["target"] == "http://prepr.example:8080/publications?x=1"
    assert seen["headers"]["Proxy-Authorization"] == "Basic dXNlcjpwQHNz"  # user:p@ss
    monkeypatch.setenv("NO_PROXY", "prepr.example")
    with pytest.raises(NoAnswer):  # bypassed: straight to a host that does not resolve
        _get("http://prepr.example:8080/publications", timeout=(1, 1))
    assert len(origin.seen) == 1


@pytest.fixture
def tls(tmp_path: Path) -> tuple[ssl.SSLContext, Path]:
    if not shutil.which("openssl"):
        pytest.fail("openssl is needed to make the test certificate")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(tmp_path / "key.pem"),
                    "-out", str(tmp_path / "cert.pem"), "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost"], check=True, capture_output=True)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    return context, tmp_path / "cert.pem"


class Tunnel(http.server.BaseHTTPRequestHandler):
    """A CONNECT proxy: records the request, then relays bytes both ways."""

    def do_CONNECT(self) -> None:
        self.server.seen.append({"target": self.path, "headers": dict(self.headers)})  # type: ignore[attr-defined]
        host, port = self.path.rsplit(":", 1)
        upstream = socket.create_connection(("127.0.0.1", int(port)))
        self.send_response(200, "Connection established")
        self.end_headers()
        self.wfile.flush()
        sockets = [self.connection, upstream]
        while True:
            ready, _, _ = select.select(sockets, [], [], 5)
            if not ready:
                break
            for sock in ready:
                data = sock.recv(65536)
                if not data:
                    upstream.close()
                    return
                (upstream if sock is self.connection else self.connection).sendall(data)

    def log_message(self, *args: object) -> None:
        pass


def test_tls_is_verified_against_the_ca_bundle_directly_and_through_a_tunnel(tls, monkeypatch):
    context, cert = tls
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "NO_PROXY", "no_proxy",
                 "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    for secure in _serve(Recorder, context):
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))
        url = _url(secure, "https", "localhost") + "/secure"
        assert _get(url).status == 200
        monkeypatch.delenv("SSL_CERT_FILE")  # certifi's bundle does not know our certificate
        with pytest.raises(NoAnswer) as info:
            _get(url)
        assert "certificate" in str(info.value).lower() and not info.value.timeout

        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
        for proxy in _serve(Tunnel):
            monkeypatch.setenv("HTTPS_PROXY", _url(proxy))
            assert _get(url).status == 200
            assert proxy.seen[0]["target"] == f"localhost:{secure.server_address[1]}"
        assert [s["target"] for s in secure.seen] == ["/secure", "/secure"]
