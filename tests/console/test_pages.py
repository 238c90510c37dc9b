"""SPEC §5a in a real browser, against real web, worker, Redis and the sandbox."""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any

from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.conftest import ROOT
from tests.tasks.conftest import find_item

from .conftest import ADMIN_TOKEN, RULES, Console, wait_for

INTRO = {"items": {"en-GB": {"intro": {"body": "A football derby tonight, then the table."}}}}


def sign_in(browser: Any, console: Console, token: str = ADMIN_TOKEN, navigate: bool = True) -> None:
    if navigate:
        browser.get(console.url("/login"))
    browser.find_element(By.NAME, "token").send_keys(token)
    click(browser, browser.find_element(By.CSS_SELECTOR, "form button[type=submit]"))


def click(browser: Any, element: Any) -> None:
    """Click a button or link that loads a page, and wait until the new page has replaced the old.

    The old page is marked in its own window object rather than watched through an element handle:
    asking a node of a page being torn down can fail with other errors than "stale" in Chromium."""
    browser.execute_script("window.__pa_old_page = true")
    element.click()
    WebDriverWait(browser, 30, ignored_exceptions=(WebDriverException,)).until(
        lambda b: b.execute_script("return !window.__pa_old_page && document.readyState === 'complete'"))


def text(browser: Any) -> str:
    return browser.find_element(By.TAG_NAME, "body").text


def shoot(browser: Any, tmp_path: Path, name: str) -> None:
    """Keep pictures of a page at 1280 and 390 px wide (in the tmp dir; also in CONSOLE_SCREENSHOTS
    when set), and check that at both widths nothing is wider than the window and no table scrolls
    sideways (every column, and a row's actions, in view)."""
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
        sideways = browser.execute_script("return [...document.querySelectorAll('.scroll')]"
                                          ".filter(e => e.scrollWidth > e.clientWidth + 1).length")
        assert not sideways, f"{name}: {sideways} table(s) scroll sideways at {width}px (columns out of view)"
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


def test_without_a_session_every_page_goes_to_the_sign_in(console: Console, browser: Any, tmp_path: Path) -> None:
    for path in ("", "/status", "/rules", "/dead-letters", "/events/some-id"):
        browser.get(console.url(path))
        assert "/console/login" in browser.current_url, path
    browser.get(console.url("/dead-letters"))
    sign_in(browser, console, token="not-the-token", navigate=False)
    assert "That is not the admin token." in text(browser)
    shoot(browser, tmp_path, "login-page")
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
    sent = int(re.search(r"done: (\d+) call\(s\) sent", page).group(1))  # "calls sent" = the calls listed
    assert browser.find_element(By.XPATH, "//h2[starts-with(., 'Calls sent')]/small").text == str(sent)
    writes = browser.find_elements(By.XPATH, "//h2[starts-with(., 'Calls sent')]/following-sibling::div[1]//tbody/tr")
    assert len(writes) == sent and f"PUT /publications/{item_id}" in writes[0].text
    assert ADMIN_TOKEN not in browser.page_source and console.sandbox.token not in browser.page_source
    shoot(browser, tmp_path, "event-page")

    def settled() -> str:  # every event counted once, by its outcome now: none still "queued" once run
        browser.get(console.url())
        counts = browser.find_element(By.CSS_SELECTOR, ".counts").text
        return counts if "done" in counts and "queued" not in counts else ""
    counts = wait_for(settled, what="the counts by final outcome")
    assert re.search(r"done\s+1\b", counts), counts
    row = next(tr for tr in browser.find_elements(By.CSS_SELECTOR, "table.events tbody tr") if item_id in tr.text)
    assert "Late winner" in row.text  # the item's title, read from Prepr once, beside its id
    assert browser.find_elements(By.CSS_SELECTOR, ".chart rect.bar"), "a bar for this minute's events"
    labels = [e.text for e in browser.find_elements(By.CSS_SELECTOR, ".chart text.label")]
    assert labels[0] == "0" and 0 < int(labels[1]) < int(labels[2]), labels  # the y axis: a scale
    assert re.fullmatch(r"\d\d:\d\d", labels[-1]), labels  # the x axis: times
    shoot(browser, tmp_path, "list-page")
    browser.get(console.url("?outcome=dead-lettered"))
    assert "No events match these filters." in text(browser)

    open_event_row(browser, console, item_id, "done")
    click(browser, browser.find_element(By.XPATH, "//button[contains(., 'Explain against the current rules')]"))
    explained = browser.find_element(By.CSS_SELECTOR, ".explained").text
    assert "dry run: nothing sent" in explained and "football-sport fired" in explained, explained
    assert "Evaluated as the worker would: the stored envelope plus the item as Prepr has it now" in explained
    shoot(browser, tmp_path, "event-explained-page")
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
    template = re.search(r"at WARNING:\n`([^`]+)`", (ROOT / "docs" / "operations.md").read_text()).group(1)
    documented = re.sub(r"<[^>]+>", ".+?", re.escape(template)) + "$"  # the line docs/operations.md shows
    logged = [line.split("] ", 1)[-1] for line in (tmp_path / "worker.log").read_text().splitlines()
              if "dead-lettered (" in line]
    assert logged and all(re.match(documented, line) for line in logged), (template, logged)

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
    # the limiter's window, read from Redis (the minute's: the second's lapses a second after the last call)
    assert "LIMITS:LIMITER/prepr:ratelimit:prepr/790/1/minute" in page
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
    assert re.search(r"Last reload\nfailed, \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \(1 error", page), page
    shoot(browser, tmp_path, "rules-page")
