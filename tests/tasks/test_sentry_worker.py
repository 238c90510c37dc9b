"""Sentry from a real worker, received by a local HTTP endpoint standing in for Sentry's ingest:
one report per final failure (none per retry), and no secret in it."""
from __future__ import annotations

import gzip
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator

import pytest

from tests.conftest import free_port
from tests.tasks.conftest import Service, find_item
from tests.tasks.test_worker import FOOTBALL



class Ingest:
    def __init__(self) -> None:
        self.envelopes: list[str] = []
        ingest = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                encoding = self.headers.get("Content-Encoding", "")
                if encoding == "gzip":
                    raw = gzip.decompress(raw)
                elif encoding == "deflate":
                    raw = zlib.decompress(raw)
                ingest.envelopes.append(raw.decode(errors="replace"))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: object) -> None:
                pass

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self) -> list[str]:
        return [e for e in self.envelopes if '"type":"event"' in e.replace(" ", "")]


@pytest.fixture
def ingest() -> Iterator[Ingest]:
    server = Ingest()
    yield server
    server.server.shutdown()


def test_one_sentry_report_per_final_failure_without_secrets(service: Service, ingest: Ingest) -> None:
    service.rules(FOOTBALL)
    service.start_worker(TASK_MAX_RETRIES="2", SENTRY_DSN=f"http://publickey@127.0.0.1:{ingest.port}/1")
    item_id = find_item(service.sandbox, "Late winner")["id"]
    service.sandbox.fault(f"/publications/{item_id}", method="PUT", status=503, times=None,
                          body={"error": f"upstream saw Bearer {service.sandbox.token}"})
    trace = service.wait(service.send("content_item.changed", item_id), timeout=60)
    assert trace["run"]["outcome"].startswith("dead-lettered: retries exhausted")
    assert len(service.calls(method="PUT")) == 3  # three attempts ...
    deadline = time.monotonic() + 15
    while not ingest.events() and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)  # anything else the worker would send has had time to arrive
    events = ingest.events()
    assert len(events) == 1, events  # ... one report
    assert "dead-lettered: retries exhausted" in events[0]
    for envelope in ingest.envelopes:
        assert service.sandbox.token not in envelope
