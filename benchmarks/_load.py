"""A keep-alive HTTP/1.1 load generator: several processes, each driving many sockets.

Why not http.client or requests: on a 2-core machine the load generator shares the CPU with the
server under test, so it must cost as little per request as possible. Each process keeps its
connections open, writes pre-built request bytes (signed in advance, one unique delivery per
request) and parses only the status line, Content-Length and the status word of the answer.
Every target gets exactly the same requests, bounded in time and in count, on loopback only.
"""
from __future__ import annotations

import multiprocessing as mp
import selectors
import socket
import time
from dataclasses import dataclass, field


@dataclass
class Outcome:
    """What one load run saw. Latencies are of the measured window only (after warm-up)."""

    measured: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)       # every answer, warm-up included
    measured_non2xx: int = 0
    queued: int = 0          # 202 answers whose body says "queued" (or any 202 from a baseline)
    ignored: int = 0         # 202 "ignored": recorded, deliberately not on the broker
    errors: int = 0          # connection resets / unanswered requests

    def merge(self, other: "Outcome") -> None:
        self.measured += other.measured
        self.seconds = max(self.seconds, other.seconds)
        self.latencies.extend(other.latencies)
        for code, n in other.statuses.items():
            self.statuses[code] = self.statuses.get(code, 0) + n
        self.measured_non2xx += other.measured_non2xx
        self.queued += other.queued
        self.ignored += other.ignored
        self.errors += other.errors


class _Conn:
    __slots__ = ("sock", "buf", "sent_at")

    def __init__(self, host: str, port: int) -> None:
        self.sock = socket.create_connection((host, port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.sent_at = 0.0


def _parse(buf: bytes) -> tuple[int, bytes, int] | None:
    """(status, body, bytes used) once a whole response is buffered, else None."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = buf[:end].decode("latin-1")
    length = 0
    for line in head.split("\r\n")[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    total = end + 4 + length
    if len(buf) < total:
        return None
    return int(head[9:12]), buf[end + 4:total], total


def _drive(host: str, port: int, requests: list[bytes], connections: int,
           start_at: float, warmup: float, duration: float) -> Outcome:
    """One process: keep `connections` requests in flight until time or requests run out."""
    out = Outcome()
    last = 0.0
    sel = selectors.DefaultSelector()
    pending = iter(requests)
    warm_end, stop_at = start_at + warmup, start_at + warmup + duration
    while time.monotonic() < start_at:
        time.sleep(0.001)

    def send(conn: _Conn) -> bool:
        request = next(pending, None)
        if request is None or time.monotonic() >= stop_at:
            return False
        conn.sent_at = time.monotonic()
        conn.sock.sendall(request)
        return True

    for _ in range(connections):
        conn = _Conn(host, port)
        if send(conn):
            sel.register(conn.sock, selectors.EVENT_READ, conn)
    while sel.get_map():
        for key, _ in sel.select(timeout=5.0) or [(None, None)]:
            if key is None:  # nothing answered for 5 s: give up on what is in flight
                out.errors += len(sel.get_map())
                out.seconds = max(0.0, min(last, stop_at) - warm_end)
                return out
            conn = key.data
            chunk = conn.sock.recv(65536)
            if not chunk:
                out.errors += 1
                sel.unregister(conn.sock)
                continue
            conn.buf += chunk
            parsed = _parse(conn.buf)
            if parsed is None:
                continue
            status, body, used = parsed
            conn.buf = conn.buf[used:]
            now = time.monotonic()
            out.statuses[status] = out.statuses.get(status, 0) + 1
            if status == 202:
                if b'"ignored"' in body:
                    out.ignored += 1
                else:
                    out.queued += 1
            if warm_end <= now < stop_at:
                out.measured += 1
                last = now
                out.latencies.append(now - conn.sent_at)
                out.measured_non2xx += not 200 <= status < 300
            if not send(conn):
                sel.unregister(conn.sock)
                conn.sock.close()
    out.seconds = max(0.0, min(last, stop_at) - warm_end)  # shorter if the requests ran out
    return out


def _child(queue: "mp.Queue[Outcome]", *args: object) -> None:
    queue.put(_drive(*args))  # type: ignore[arg-type]


def run(host: str, port: int, requests: list[bytes], processes: int, connections: int,
        warmup: float, duration: float) -> Outcome:
    """Spread `requests` over `processes` x `connections` sockets; all start at the same instant.

    Forked children inherit the pre-built requests, so nothing large is pickled.
    """
    ctx = mp.get_context("fork")
    queue: "mp.Queue[Outcome]" = ctx.Queue()
    start_at = time.monotonic() + 0.3
    children = [ctx.Process(target=_child, args=(queue, host, port, requests[i::processes], connections,
                                                 start_at, warmup, duration), daemon=True)
                for i in range(processes)]
    for child in children:
        child.start()
    total = Outcome()
    for _ in children:
        total.merge(queue.get(timeout=warmup + duration + 60))
    for child in children:
        child.join(10)
    return total


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) in milliseconds; 0 for no samples."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = min(len(ordered) - 1, max(0, int(round(q / 100 * len(ordered) + 0.5)) - 1))
    return ordered[rank] * 1000
