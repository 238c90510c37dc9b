"""A tracking call in flight when its worker was SIGKILLed, as the console shows it: *unknown*,
with a Send once button that sends it once (a second submit of the same form sends nothing).
Real web, workers, Redis, the sandbox (its latency on /events keeps the call in flight) and a
real browser."""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import redis
from selenium.webdriver.common.by import By

from tests.conftest import BIN, Processes
from tests.tasks.conftest import find_item

from .conftest import Console, wait_for
from .test_pages import INTRO, click, sign_in, text

TRACKING = """
version: 1
rules:
  - id: seen
    on: [content_item.changed]
    do:
      - track_event: {label: Seen, customer: "{{ event.id }}"}
"""


def _worker(processes: Processes, name: str) -> Any:
    return next(p for p in processes.procs if Path(getattr(p, "log_path", "")).name == f"{name}.log")


def test_an_unknown_tracking_call_is_shown_and_sent_once_on_request(console: Console, browser: Any,
                                                                     processes: Processes) -> None:
    console.rules_path.write_text(TRACKING)
    time.sleep(1.5)  # the web and the worker follow the rule file
    store = redis.Redis.from_url(console.redis_url)
    sandbox = console.sandbox
    sandbox.fault("/events", method="POST", latency_ms=4000, times=None)
    item_id = find_item(sandbox, "Late winner")["id"]
    console.edit_item(item_id, INTRO)

    def in_flight() -> list[bytes]:
        return [k for k in store.keys("pa:effects:*") if any(f.endswith(b"|inflight") for f in store.hkeys(k))]
    key = wait_for(in_flight, timeout=60, every=0.05, what="a tracking call in flight")[0]
    event_id = key.decode().split("pa:effects:", 1)[1]
    worker = _worker(processes, "worker")
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait(10)
    sandbox.clear_faults()
    env = {k: v for k, v in os.environ.items()}
    env.update({**sandbox.env, "CELERY_BROKER_URL": console.redis_url, "RULES_PATH": str(console.rules_path),
                "DATA_DIR": str(console.rules_path.parent / "var")})
    processes.start([str(BIN / "celery"), "-A", "tasks", "worker", "-Q", "celery,bulk", "-c", "1", "--without-gossip",
                     "--without-mingle", "--loglevel", "INFO", "-n", "console-test-2@%h"], env, "worker-2")

    sign_in(browser, console)
    page = console.url(f"/events/{event_id}")

    def unknown_shown() -> bool:
        browser.get(page)
        return "Unknown effects" in text(browser)
    wait_for(unknown_shown, timeout=90, what="the effect shown unknown after the takeover")  # ALIVE_TTL + a sweep
    body = text(browser)
    assert "unknown (in flight when an earlier attempt stopped, not resent)" in body
    tracked = [e for e in sandbox.tracked_events() if e["body"].get("customer") == event_id]
    assert len(tracked) <= 1  # the call in flight may have arrived; it was not sent again

    first = browser.current_window_handle
    browser.switch_to.new_window("tab")  # a second tab on the same page: its button sent second
    browser.get(page)
    click(browser, browser.find_element(By.XPATH, "//button[normalize-space()='Send once']"))
    assert "Queued: the effect is sent once." in text(browser)
    browser.switch_to.window(first)
    click(browser, browser.find_element(By.XPATH, "//button[normalize-space()='Send once']"))
    assert "already asked for" in text(browser) or "nothing to send" in text(browser)

    def sent() -> bool:
        browser.get(page)
        return "sent on request" in text(browser)
    wait_for(sent, what="the effect sent on request")
    assert "Unknown effects" not in text(browser)
    again = [e for e in sandbox.tracked_events() if e["body"].get("customer") == event_id]
    assert len(again) == len(tracked) + 1
