"""SPEC §5a in a real browser, against real web, worker, Redis and the sandbox."""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from selenium.webdriver.common.by import By
from selenium.webdriver.support.expected_conditions import staleness_of
from selenium.webdriver.support.ui import WebDriverWait

from tests.tasks.conftest import find_item

from .conftest import ADMIN_TOKEN, RULES, Console, wait_for

INTRO = {"items": {"en-GB": {"intro": {"body": "A football derby tonight, then the table."}}}}


def sign_in(browser: Any, console: Console, token: str = ADMIN_TOKEN, navigate: bool = True) -> None:
    if navigate:
        browser.get(console.url("/login"))
    browser.find_element(By.NAME, "token").send_keys(token)
    click(browser, browser.find_element(By.CSS_SELECTOR, "form button[type=submit]"))


def click(browser: Any, element: Any) -> None:
    """Click a button or link that loads a page, and wait until the new page has replaced the old."""
    old = browser.find_element(By.TAG_NAME, "html")
    element.click()
    WebDriverWait(browser, 30).until(staleness_of(old))


def text(browser: Any) -> str:
    return browser.find_element(By.TAG_NAME, "body").text


def shoot(browser: Any, tmp_path: Path, name: str) -> None:
    """Keep pictures of a page at 1280 and 390 px wide (in the tmp dir; also in CONSOLE_SCREENSHOTS
    when set), and check that at 390 px nothing but a table's own scroll box is wider than the screen."""
    for width in (1280, 390):
        browser.set_window_size(width, 1000)
        height = browser.execute_script("return document.documentElement.scrollHeight")
        browser.set_window_size(width, min(4000, height + 140))
        path = tmp_path / f"{name}-{width}.png"
        browser.save_screenshot(str(path))
        if os.environ.get("CONSOLE_SCREENSHOTS"):
            shutil.copy(path, Path(os.environ["CONSOLE_SCREENSHOTS"]) / path.name)
        overflow = browser.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{name} is {overflow}px wider than a {width}px window"
    browser.set_window_size(1280, 1000)


def open_event_row(browser: Any, console: Console, item_id: str, outcome: str) -> None:
    """Reload the list until the item's event shows `outcome`, then open its trace."""
    def row() -> Any:
        browser.get(console.url(f"?event=content_item.changed"))
        for tr in browser.find_elements(By.CSS_SELECTOR, "table.events tbody tr"):
            if item_id in tr.text and outcome in tr.text and "football-sport" in tr.text:
                return tr
        return None
    found = wait_for(row, what=f"an event for {item_id} with outcome {outcome!r} in the list")
    click(browser, found.find_element(By.TAG_NAME, "a"))


def test_without_a_session_every_page_goes_to_the_sign_in(console: Console, browser: Any) -> None:
    for path in ("", "/status", "/rules", "/dead-letters", "/events/some-id"):
        browser.get(console.url(path))
        assert "/console/login" in browser.current_url, path
    browser.get(console.url("/dead-letters"))
    sign_in(browser, console, token="not-the-token", navigate=False)
    assert "That is not the admin token." in text(browser)
    sign_in(browser, console, navigate=False)
    assert browser.current_url == console.url("/dead-letters"), "back to the page first asked for"
    assert "No dead letters." in text(browser)


def test_an_event_the_sandbox_caused_its_trace_explain_and_replay(console: Console, browser: Any, tmp_path: Path) -> None:
    sign_in(browser, console)
    item_id = find_item(console.sandbox, "Late winner")["id"]
    console.edit_item(item_id, INTRO)
    open_event_row(browser, console, item_id, "done: 1 call(s) sent")
    page = text(browser)
    assert "football-sport" in page and "fired" in page
    assert "q fz" in page and "actual:" in page  # each condition with its actual value
    assert f"GET /publications/{item_id}" in page and f"PUT /publications/{item_id}" in page
    assert "200" in page and "Attempt\n1 (0 retries)" in page
    assert ADMIN_TOKEN not in browser.page_source and console.sandbox.token not in browser.page_source
    shoot(browser, tmp_path, "event-page")

    browser.get(console.url())
    counts = browser.find_element(By.CSS_SELECTOR, ".counts").text
    assert "done" in counts and "queued" in counts
    assert browser.find_elements(By.CSS_SELECTOR, ".chart rect.bar"), "a bar for this minute's events"
    shoot(browser, tmp_path, "list-page")
    browser.get(console.url("?outcome=dead-lettered"))
    assert "No events match these filters." in text(browser)

    open_event_row(browser, console, item_id, "done")
    click(browser, browser.find_element(By.XPATH, "//button[contains(., 'Explain against the current rules')]"))
    explained = browser.find_element(By.CSS_SELECTOR, ".explained").text
    assert "dry run: nothing sent" in explained and "football-sport" in explained
    before = len(console.sandbox.requests(method="PUT"))

    click(browser, browser.find_element(By.XPATH, "//button[normalize-space()='Replay']"))
    assert "Replayed: queued again." in text(browser)
    event_url = browser.current_url

    def replayed() -> bool:
        browser.get(event_url)
        return "replay of event" in text(browser) and "no change" in text(browser)
    wait_for(replayed, what="the replayed run in the trace")
    assert len(console.sandbox.requests(method="PUT")) == before, "the item already has the tag: no PUT"


def test_a_dead_letter_replayed_from_the_console_succeeds(console: Console, browser: Any, tmp_path: Path) -> None:
    sign_in(browser, console)
    item_id = find_item(console.sandbox, "Late winner")["id"]
    console.sandbox.fault(f"/publications/{item_id}", 400, method="GET", times=1)
    console.edit_item(item_id, INTRO)

    def letter() -> bool:
        browser.get(console.url("/dead-letters"))
        return "request refused" in text(browser)
    wait_for(letter, what="the dead letter")
    page = text(browser)
    assert f"GET /publications/{item_id}" in page and "400" in page
    shoot(browser, tmp_path, "dead-letters-page")

    # the same form without its CSRF token is refused, and the letter stays
    browser.execute_script("document.querySelectorAll('input[name=csrf_token]').forEach(e => e.remove())")
    click(browser, browser.find_element(By.XPATH, "//button[normalize-space()='Replay all']"))
    assert "Form refused" in text(browser) and "CSRF" in text(browser)
    browser.get(console.url("/dead-letters"))
    assert "request refused" in text(browser)

    click(browser, browser.find_element(By.XPATH, "//td/form/button[normalize-space()='Replay']"))
    assert "Replayed 1 dead letter(s)." in text(browser) and "No dead letters." in text(browser)
    open_event_row(browser, console, item_id, "done: 1 call(s) sent")
    assert "replay of" in text(browser)

    browser.get(console.url("/status"))
    page = text(browser)
    assert "celery\n0 waiting" in page and "bulk\n0 waiting" in page
    assert "console-test@" in page and "answered now" in page  # the worker, seen by a ping
    assert "prepr:ratelimit:prepr:log" in page  # the limiter's window, read from Redis
    shoot(browser, tmp_path, "status-page")


def test_a_broken_rule_edit_shows_on_the_rules_page(console: Console, browser: Any, tmp_path: Path) -> None:
    sign_in(browser, console)
    browser.get(console.url("/rules"))
    page = text(browser)
    assert "football-sport" in page and "disabled: waiting for the new taxonomy" in page
    assert "content_item.changed" in page and "Last reload" in page

    console.rules_path.write_text(RULES.replace("add_tags: [sport]", "add_tagz: [sport]"))

    def broken() -> bool:
        browser.get(console.url("/rules"))
        return "did not validate" in text(browser)
    wait_for(broken, timeout=30, what="the failed reload on the rules page")
    page = text(browser)
    assert "add_tagz" in page and "rules.yaml:" in page
    assert "The previous rule set stays in force" in page and "football-sport" in page
    shoot(browser, tmp_path, "rules-page")
