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

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
FIXTURES = SHARED / "fixtures"
BIN = Path(sys.executable).parent
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/13")


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
    """Starts real subprocesses and makes sure every one is gone at teardown."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.procs: list[subprocess.Popen] = []

    def start(self, args: list[str], env: dict[str, str], name: str) -> subprocess.Popen:
        log = open(self.tmp / f"{name}.log", "wb")
        proc = subprocess.Popen(args, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT,
                                cwd=str(ROOT), start_new_session=True)
        proc.log_path = self.tmp / f"{name}.log"  # type: ignore[attr-defined]
        self.procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen, sig: int = 15, timeout: float = 15) -> None:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                return
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
                proc.wait(5)

    def close(self) -> None:
        for proc in reversed(self.procs):
            self.stop(proc)


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
