"""Remote mode: the sandbox as Prepr across the internet (latency, rate-limit windows per token)."""
from __future__ import annotations

import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.conftest import SANDBOX_TOKEN


def _get(sandbox, token: str = SANDBOX_TOKEN, path: str = "/tags") -> requests.Response:
    return requests.get(f"{sandbox.url}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=10)


def test_options_start_it_in_remote_mode(sandbox_factory):
    sandbox = sandbox_factory(env={"SANDBOX_LATENCY_MS": "150", "SANDBOX_RATE_LIMIT": "3/second;5/minute"})
    assert sandbox.admin("GET", "remote") == {"latency_ms": 150, "rate_limit": "3/second;5/minute"}
    started = time.monotonic()
    answers = [_get(sandbox) for _ in range(7)]
    assert time.monotonic() - started >= 7 * 0.15
    assert [a.status_code for a in answers[:3]] == [200] * 3 and answers[3].status_code == 429
    first = answers[0].headers
    assert (first["X-Prepr-RateLimit-Limit"], first["X-Prepr-RateLimit-Remaining"]) == ("3", "2")
    refused = answers[3]
    assert refused.json()["error"]["status"] == 429
    assert refused.headers["X-Prepr-RateLimit-Remaining"] == "0" and refused.headers["Retry-After"] == "1"
    time.sleep(1.05)  # the second window has slid; the refused ones were not counted
    later = [_get(sandbox) for _ in range(3)]
    assert [a.status_code for a in later] == [200, 200, 429]
    minute = later[2].headers
    assert minute["X-Prepr-RateLimit-Limit"] == "5" and 50 < int(minute["Retry-After"]) <= 60
    statuses = [r["status"] for r in sandbox.requests(path="/tags")]
    assert statuses.count(429) == len(statuses) - 5


def test_latency_delays_each_call_but_not_the_others(sandbox):
    sandbox.admin("PUT", "remote", {"latency_ms": 400})
    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: _get(sandbox), range(8)))
    elapsed = time.monotonic() - started
    assert all(a.status_code == 200 for a in answers)
    assert 0.4 <= elapsed < 8 * 0.4 / 2, elapsed  # concurrent, not one after another


def test_windows_are_per_token_and_neither_tracking_nor_editors_are_counted(sandbox):
    sandbox.admin("PUT", "remote", {"latency_ms": 0, "rate_limit": "2/minute"})
    assert [_get(sandbox, "not-the-token").status_code for _ in range(3)] == [401, 401, 429]
    for _ in range(3):
        assert requests.post(f"{sandbox.url}/events", json={"event": "View"}, timeout=5).status_code == 202
    first = _get(sandbox, path="/publications?limit=1").json()["items"][0]["id"]
    for n in range(3):  # an editor's change is made in Prepr's app, not with the token
        edit = requests.put(f"{sandbox.url}/publications/{first}", timeout=5,
                            json={"items": {"en-GB": {"title": {"body": f"t{n}"}}}},
                            headers={"Authorization": f"Bearer {SANDBOX_TOKEN}", "X-Sandbox-User": sandbox.user_id})
        assert edit.status_code == 200 and "X-Prepr-RateLimit-Remaining" not in edit.headers
    assert [_get(sandbox).status_code for _ in range(2)] == [200, 429]


def test_reconfiguring_starts_the_windows_afresh_and_off_turns_it_off(sandbox):
    sandbox.admin("PUT", "remote", {"rate_limit": "1/minute"})
    assert [_get(sandbox).status_code for _ in range(2)] == [200, 429]
    assert sandbox.admin("PUT", "remote", {"rate_limit": "1/minute"})["rate_limit"] == "1/minute"
    assert _get(sandbox).status_code == 200
    assert sandbox.admin("PUT", "remote", {}) == {"latency_ms": 0, "rate_limit": None}
    answers = [_get(sandbox) for _ in range(5)]
    assert all(a.status_code == 200 and "X-Prepr-RateLimit-Limit" not in a.headers for a in answers)


@pytest.mark.parametrize("body", [{"latency_ms": "slow"}, {"latency_ms": -1}, {"latency_ms": 1.5},
                                  {"rate_limit": "lots"}, {"rate_limit": 35}, {"rate_limit": "0/second"}])
def test_bad_remote_settings_are_a_422_and_change_nothing(sandbox, body):
    sandbox.admin("PUT", "remote", {"latency_ms": 5, "rate_limit": "35/second"})
    answer = requests.put(f"{sandbox.url}/_sandbox/remote", json=body, timeout=5,
                          headers={"Authorization": f"Bearer {sandbox.token}"})
    assert answer.status_code == 422 and answer.json()["error"]["message"]
    assert sandbox.admin("GET", "remote") == {"latency_ms": 5, "rate_limit": "35/second"}


@pytest.mark.parametrize("args, message", [(["--rate-limit", "lots"], "--rate-limit"),
                                           (["--latency-ms", "-5"], "--latency-ms")])
def test_bad_command_options_are_a_usage_error(tmp_path, args, message):
    done = subprocess.run([sys.executable, "-m", "sandbox", "--port", "0", "--data-dir", str(tmp_path), *args],
                          capture_output=True, text=True, timeout=30, env={"PREPR_ACCESS_TOKEN": "t", "PATH": ""})
    assert done.returncode == 2 and message in done.stderr
