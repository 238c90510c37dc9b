"""The console as an operator meets it: gunicorn web, a Celery worker, the sandbox, real Redis, and
Debian's chromium driven by Selenium (never downloaded: the driver path is given).

Without chromium + chromium-driver the browser tests skip on a developer machine and FAIL in CI
(CI=true); `.ci/run` installs them, `make test` says how. A failing test leaves a screenshot
(and the page's HTML) in its tmp dir.
"""
from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import requests

from tests.conftest import BIN, Processes, Sandbox, free_port, wait_http

CHROMEDRIVER = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")
CHROMIUM = os.environ.get("CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")
ADMIN_TOKEN = "console-test-admin-token-3c9e"
SECRET = "console-test-webhook-key"
EDITOR = "editor-0000-4000-8000-000000000001"
RULES = """
version: 1
rules:
  - id: football-sport
    description: Football coverage gets the sport tag
    on: [content_item.changed]
    when:
      q: {fz: football}
    do:
      - add_tags: [sport]
  - id: parked
    disabled: "waiting for the new taxonomy"
    on: [content_item.published]
    do:
      - add_tags: [parked]
"""


class Console:
    """web + worker + sandbox, all real processes, and where they are."""

    def __init__(self, web: str, sandbox: Sandbox, rules_path: Path, redis_url: str) -> None:
        self.web, self.sandbox, self.rules_path, self.redis_url = web, sandbox, rules_path, redis_url

    def url(self, path: str = "") -> str:
        return f"{self.web}/console{path}"

    def edit_item(self, item_id: str, body: dict[str, Any]) -> None:
        """Change an item as an editor in Prepr would: the sandbox sends the signed webhook."""
        response = requests.put(f"{self.sandbox.url}/publications/{item_id}", json=body, timeout=10,
                                headers={"Authorization": f"Bearer {self.sandbox.token}", "X-Sandbox-User": EDITOR})
        response.raise_for_status()
        assert self.sandbox.flush_webhooks(), "the sandbox's webhook did not go out"


@pytest.fixture
def console(processes: Processes, redis_url: str, sandbox_factory: Callable[..., Sandbox], tmp_path: Path) -> Console:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    port = free_port()
    web = f"http://127.0.0.1:{port}"
    sandbox = sandbox_factory(webhook_url=f"{web}/webhooks/prepr", webhook_secret=SECRET, api="publications")
    env = {**sandbox.env, "CELERY_BROKER_URL": redis_url, "RULES_PATH": str(rules), "PREPR_WEBHOOK_SECRETS": SECRET,
           "ADMIN_TOKEN": ADMIN_TOKEN, "DATA_DIR": str(tmp_path / "var"), "TASK_MAX_RETRIES": "1"}
    proc = processes.start([str(BIN / "gunicorn"), "webhooks:create_app()", "--preload", "--bind", f"127.0.0.1:{port}",
                            "--worker-class", "gthread", "--workers", "1", "--threads", "4"], env, "web")
    wait_http(f"{web}/health", proc=proc)
    processes.start([str(BIN / "celery"), "-A", "tasks", "worker", "-Q", "celery,bulk", "-c", "1", "--without-gossip",
                     "--without-mingle", "--loglevel", "INFO", "-n", "console-test@%h"], env, "worker")
    return Console(web, sandbox, rules, redis_url)


def _browser_or_fail() -> None:
    missing = [path for path in (CHROMEDRIVER, CHROMIUM) if not Path(path).is_file()]
    if missing:
        message = (f"no browser for the console tests ({', '.join(missing)} missing): "
                   "apt-get install chromium chromium-driver")
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


@pytest.fixture
def browser(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    _browser_or_fail()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1280,1000", f"--user-data-dir={tmp_path / 'chromium'}"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER, log_output=str(tmp_path / "chromedriver.log")),
                              options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        failed = getattr(request.node, "rep_call", None)
        if failed is not None and failed.failed:
            driver.save_screenshot(str(tmp_path / "failure.png"))
            (tmp_path / "failure.html").write_text(driver.page_source)
            print(f"screenshot: {tmp_path / 'failure.png'}", file=sys.stderr)
        driver.quit()


def wait_for(check: Callable[[], Any], timeout: float = 60, every: float = 0.5, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise TimeoutError(f"{what} not reached within {timeout}s")
