"""Console list page benchmark (`python -m benchmarks.console_list`): results in the `## Console`
section of benchmarks/RESULTS.md (only that section is rewritten).

The event list (`GET /console`) with 100 and with 10,000 events stored, unfiltered (the newest 50)
and filtered (a filter that matches 1 in 100 events, and one that matches none: every stored
event examined), plus one event page. Stores are written the way the receiver and the worker
write them (Intake.accept, TraceWriter.write). Served in-process by the Flask app (no HTTP), from a
private embedded Redis over its unix socket; the two store sizes are timed side by side, requests
interleaved. Goal: the unfiltered page with 10,000 events within 2x its time with 100.
"""
from __future__ import annotations

import re
import statistics
import tempfile
import time
import uuid
from typing import Any

from benchmarks import _report
from prepr_automation import store
from prepr_automation.settings import Settings
from tasks.traces import TraceWriter
from webhooks import create_app
from webhooks.intake import Intake

HEADING = "## Console"
SIZES = (100, 10_000)
ROUNDS = 15
TOKEN = "bench-admin-token"
OUTCOMES = ["done: 1 call(s) sent"] * 60 + ["no change"] * 20 + ["no rule matched"] * 19 + \
    ["dead-lettered: request refused (letter x)"]


def fill(url: str, n: int) -> str:
    client = store.redis_client(url)
    client.flushdb()
    intake, traces = Intake(client, 86400, 86400), TraceWriter(client, 86400, [])
    event_id = ""
    for i in range(n):
        event_id = str(uuid.uuid4())
        intake.accept({"id": event_id, "event": "content_item.changed", "created_on": 1,
                       "payload": {"id": f"item-{i % 500}"}}, enqueue=False)
        traces.write(event_id, "run", {"outcome": OUTCOMES[i % len(OUTCOMES)], "elapsed_ms": 40.0, "attempt": 1,
                                       "evaluation": {"fired": ["tag-football"], "rules": []}, "calls": []})
    client.delete("celery")
    return event_id


def signed_in(url: str) -> Any:
    app = create_app(Settings(webhook_secrets=("k",), broker_url=url, admin_token=TOKEN, rules_path="rules"))
    client = app.test_client()
    form = client.get("/console/login").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)  # type: ignore[union-attr]
    assert client.post("/console/login", data={"token": TOKEN, "csrf_token": csrf}).status_code == 302
    return client


def timed(client: Any, path: str) -> float:
    start = time.perf_counter()
    response = client.get(path)
    elapsed = time.perf_counter() - start
    assert response.status_code == 200, (path, response.status_code)
    return elapsed * 1000


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        base = store.ensure_embedded(tmp)
        try:
            urls = {n: f"{base}?virtual_host={i}" for i, n in enumerate(SIZES)}
            last = {n: fill(url, n) for n, url in urls.items()}
            clients = {n: signed_in(url) for n, url in urls.items()}
            pages = {"list, newest 50": "/console", "list, outcome=dead-lettered (1 in 100)":
                     "/console?outcome=dead-lettered", "list, rule matching none (all examined)":
                     "/console?rule=no-such-rule", "event page": None}
            times: dict[tuple[str, int], list[float]] = {(p, n): [] for p in pages for n in SIZES}
            for _ in range(ROUNDS):
                for page, path in pages.items():
                    for n in SIZES:
                        times[(page, n)].append(timed(clients[n], path or f"/console/events/{last[n]}"))
        finally:
            store.stop_embedded(tmp)
    lines = [HEADING, "", __doc__.split("\n\n", 1)[1].strip(), "", _report.machine(), "",
             f"| page | {SIZES[0]:,} events (ms, median) | {SIZES[1]:,} events (ms, median) | ratio |",
             "|---|---|---|---|"]
    for page in pages:
        small, large = (statistics.median(times[(page, n)]) for n in SIZES)
        lines.append(f"| {page} | {small:.1f} | {large:.1f} | {large / small:.2f}x |")
    text = "\n".join(lines) + "\n"
    print(text)
    _report.write_section(text, HEADING)


if __name__ == "__main__":
    main()
