"""Hostile variations of real deliveries, for the receiver fuzz (tests) and its long run (make fuzz).

Driven by a `random.Random`: hypothesis hands the test one it can shrink (`st.randoms()`), the long
run a seeded one. Each request is (body, signature or None, content type, framing).
"""
from __future__ import annotations

import json
import random
import socket
from typing import Any

from webhooks.signature import sign

ODD = [None, True, 0, -1, 2**64, 1e308, "", " ", "x" * 250, "\ud800", "x\udfff", "😀", "\x00", "../tags",
       "X?fields=id", [], {}, [None], {"id": {"id": 1}}, "2022-02-06T15:55:24Z", "1" * 30, "²"]
FIELDS = ["id", "event", "payload", "created_on", "performed_by", "dc", "extra"]


def _value(rng: random.Random, depth: int = 0) -> Any:
    roll = rng.random()
    if roll < 0.5 or depth > 3:
        return rng.choice(ODD)
    if roll < 0.75:
        return [_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    return {rng.choice(["id", "tags", "\ud800", "a" * 300, "x"]): _value(rng, depth + 1) for _ in range(rng.randint(0, 3))}


def _nest(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = {"a": value} if levels % 2 else [value]
    return value


def _dump(envelope: Any, rng: random.Random) -> bytes:
    text = json.dumps(envelope, ensure_ascii=rng.random() < 0.7)
    return text.encode("utf-8", "surrogatepass")


def mutate(raw: bytes, rng: random.Random, secret: str) -> tuple[bytes, str | None, str, str]:
    """One request made from one real delivery. Most are signed (the parser and the envelope check
    are what a signature protects, so that is where a fuzz must reach)."""
    envelope = json.loads(raw)
    kind = rng.randrange(9)
    if kind == 0:
        envelope[rng.choice(FIELDS)] = _value(rng)
    elif kind == 1:
        envelope.pop(rng.choice(FIELDS), None)
    elif kind == 2:
        envelope["payload"] = _nest(rng.choice([5, 30, 31, 33, 64, 500]))
    elif kind == 3:
        envelope[rng.choice(["id", "event"])] = rng.choice(["x" * rng.choice([199, 200, 201, 5000]), "\ud800", "a\udbff"])
    elif kind == 4:
        envelope["payload"] = _value(rng) if rng.random() < 0.5 else {"id": _value(rng)}
    elif kind == 5:
        envelope["created_on"] = rng.choice([0, 1644162928, 4102444800, "", "9" * 4000, "2022-02-06", -1e308, 1.5])
    body = _dump(envelope, rng)
    if kind == 6 and body:  # raw byte damage: truncation, a flipped byte, invalid UTF-8
        at = rng.randrange(len(body))
        body = rng.choice([body[:at], body[:at] + bytes([rng.randrange(256)]) + body[at + 1:], body + b"\xff"])
    elif kind == 7:
        body = rng.choice([b"[" * 3000, b"null", b"1e999", b'"\\ud800"', b"{}", b"", b"\xef\xbb\xbf{}"])
    signature = sign(body, secret)
    roll = rng.random()
    if roll < 0.05:
        signature = None
    elif roll < 0.08:
        signature = signature.upper()
    content_type = "application/json" if rng.random() < 0.95 else rng.choice(["text/plain", "application/x+json", ""])
    framing = "length" if kind != 8 else rng.choice(["chunked", "bad-chunk-size", "no-terminator", "bad-trailer",
                                                     "short"])
    return body, signature, content_type, framing


def http_request(body: bytes, signature: str | None, content_type: str, framing: str) -> bytes:
    """The request's bytes on the wire: Content-Length, chunked, or chunked and broken."""
    head = b"POST /webhooks/prepr HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    if content_type:
        head += b"Content-Type: " + content_type.encode() + b"\r\n"
    if signature is not None:
        head += b"Prepr-Signature: " + signature.encode() + b"\r\n"
    if framing == "length":
        return head + b"Content-Length: %d\r\n\r\n" % len(body) + body
    if framing == "short":  # announces more than it sends, then half-closes
        return head + b"Content-Length: %d\r\n\r\n" % (len(body) + 10) + body
    head += b"Transfer-Encoding: chunked\r\n\r\n"
    chunk = b"%x\r\n%s\r\n" % (len(body), body) if body else b""
    if framing == "bad-chunk-size":
        return head + b"zz\r\n" + body + b"\r\n0\r\n\r\n"
    if framing == "no-terminator":
        return head + b"%x\r\n%sXX0\r\n\r\n" % (len(body), body)
    if framing == "bad-trailer":
        return head + chunk + b"0\r\nbad trailer line\r\n\r\n"
    return head + chunk + b"0\r\n\r\n"


def exchange(port: int, data: bytes, half_close: bool = False) -> int:
    """Send one request on its own connection; its status, or 0 when closed without an answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        try:
            sock.sendall(data)
            if half_close:
                sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server may answer and close before reading everything
        answer = b""
        try:
            while b"\r\n" not in answer:
                piece = sock.recv(4096)
                if not piece:
                    return 0
                answer += piece
        except OSError:
            return 0
        return int(answer.split(b" ", 2)[1])
