"""Slow senders against the receiver: does /health keep answering while they trickle?

`python -m benchmarks.slow_clients [WORKER_CLASS ...]` serves the project with the Procfile's web
flags (or with another worker class, side by side), opens SLOW connections that each send their
headers and then one body byte a second (unsigned, as an attacker would), polls /health for
SECONDS, and reports how many polls were answered, their worst latency, and what the slow
senders got in the end. Loopback only, bounded in time; not part of `make bench`.
"""
from __future__ import annotations

import socket
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from benchmarks import _serve

SLOW, SECONDS = 16, 20


def _trickle(port: int, until: float, outcome: list[str]) -> None:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=SECONDS + 30) as sock:
            sock.sendall(b"POST /webhooks/prepr HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Prepr-Signature: " + b"0" * 64 + b"\r\nContent-Length: 100000\r\n\r\n")
            while time.monotonic() < until:
                sock.sendall(b" ")
                time.sleep(1)
            sock.settimeout(5)
            answer = sock.recv(64)
            outcome.append(answer.split(b"\r\n", 1)[0].decode() or "closed")
    except OSError as exc:
        outcome.append(type(exc).__name__)


def measure(worker_class: str | None) -> dict[str, object]:
    """One server, SLOW tricklers, /health polled every 0.2 s."""
    work = Path(tempfile.mkdtemp(prefix="bench-slow-"))
    spec = _serve.PROJECT_APP
    env = {"PREPR_WEBHOOK_SECRETS": "slow-bench-key", "DATA_DIR": str(work)}
    original = _serve.web_args
    if worker_class:
        _serve.web_args = lambda app, port: _with_class(original(app, port), worker_class)  # type: ignore[assignment]
    try:
        server = _serve.start(f"slow {worker_class or 'Procfile'}", spec, env, work / "gunicorn.log")
    finally:
        _serve.web_args = original  # type: ignore[assignment]
    outcome: list[str] = []
    until = time.monotonic() + SECONDS
    threads = [threading.Thread(target=_trickle, args=(server.port, until, outcome)) for _ in range(SLOW)]
    for thread in threads:
        thread.start()
    time.sleep(1)
    answered, polls, worst = 0, 0, 0.0
    while time.monotonic() < until:
        polls += 1
        started = time.monotonic()
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{server.port}/health", timeout=2).read()
            answered += 1
            worst = max(worst, time.monotonic() - started)
        except OSError:
            worst = max(worst, time.monotonic() - started)
        time.sleep(max(0.0, 0.2 - (time.monotonic() - started)))
    for thread in threads:
        thread.join()
    server.stop()
    from prepr_automation import store

    store.stop_embedded(str(work))
    return {"worker class": worker_class or "Procfile", "health polls": polls, "answered": answered,
            "worst ms": round(worst * 1000, 1), "slow senders got": sorted(set(outcome))}


def _with_class(args: list[str], worker_class: str) -> list[str]:
    args = list(args)
    at = args.index("--worker-class")
    args[at + 1] = worker_class
    if worker_class == "gthread" and "--worker-connections" in args:
        at = args.index("--worker-connections")
        args[at:at + 2] = ["--threads", "8"]
    return args


if __name__ == "__main__":
    for name in sys.argv[1:] or [None]:  # type: ignore[list-item]
        print(measure(name), flush=True)
