"""The sandbox as a program: the CLI, the token, persistence, demo content, admin controls, and
its server (werkzeug's threaded one): keep-alive, concurrent connections, a clean SIGTERM."""
from __future__ import annotations

import http.client
import os
import signal
import subprocess
import threading
import time

import requests

from tests.conftest import BIN, free_port, wait_http


def test_cli_runs_on_its_own_and_makes_a_token(processes, tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "PREPR_ACCESS_TOKEN"}
    started = time.monotonic()
    proc = subprocess.Popen([str(BIN / "prepr-automation"), "sandbox", "--port", str(port), "--data-dir",
                             str(tmp_path)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    processes.procs.append(proc)
    line = proc.stdout.readline()
    assert "PREPR_ACCESS_TOKEN" in line
    token = line.rsplit(" ", 1)[-1].strip()
    wait_http(f"http://127.0.0.1:{port}/health", proc=proc)
    assert time.monotonic() - started < 10
    url = f"http://127.0.0.1:{port}/publications"
    assert requests.get(url, timeout=5).status_code == 401
    assert requests.get(url, headers={"Authorization": "Bearer nope"}, timeout=5).status_code == 401
    listed = requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=5).json()
    assert listed["total"] >= 30 and listed["limit"] == 25 and listed["skip"] == 0
    assert (tmp_path / "sandbox.sqlite3").exists()


def test_demo_content_is_deterministic_and_varied(sandbox, sandbox_factory):
    client = sandbox.client()
    pubs = list(client.list_items())
    again = list(sandbox_factory().client().list_items())
    assert [p["id"] for p in pubs] == [p["id"] for p in again]
    assert {p["model"]["body"] for p in pubs} == {"Article", "News", "Recipe"}
    assert {loc for p in pubs for loc in p["locales"]} == {"en-GB", "nl-NL"}
    assert {c["slug"] for p in pubs for c in p["channels"]} == {"web", "app", "newsletter"}
    for word in ("football", "soccer", "tennis", "voetbal"):
        assert list(client.list_items({"q": {"fz": word}}, limit=1)), word
    untagged_sport = list(client.list_items({"q": {"fz": "football"}, "tags": {"has": False}}))
    assert untagged_sport  # material for the auto-tag example rules
    assert len(list(client.list_tags())) >= 8 and len(list(client.list_channels())) == 3


def test_content_survives_a_restart(sandbox_factory, processes):
    first = sandbox_factory()
    created = first.client().create_item({"model": {"body": "Article"},
                                                 "items": {"nl-NL": {"title": {"body": "Blijft bewaard"}}}})
    processes.stop(first.proc)
    second = sandbox_factory(data_dir=first.data_dir)
    fetched = second.client().get_item(created["id"])
    assert fetched["items"]["nl-NL"]["title"]["body"] == "Blijft bewaard" and fetched["locales"] == ["nl-NL"]


def test_admin_log_faults_and_reset(sandbox):
    client = sandbox.client()
    assert requests.get(f"{sandbox.url}/_sandbox/requests", timeout=5).status_code == 401
    list(client.list_tags())
    log = sandbox.requests()
    assert [(r["method"], r["path"], r["status"]) for r in log] == [("GET", "/tags", 200)]
    assert "limit=100" in log[0]["query"] and log[0]["timestamp"] <= time.time()
    sandbox.clear_requests()
    sandbox.fault("/tags*", 502, method="GET", times=None)
    for _ in range(3):
        assert requests.get(f"{sandbox.url}/tags", headers={"Authorization": f"Bearer {sandbox.token}"},
                            timeout=5).status_code == 502
    assert requests.post(f"{sandbox.url}/tags", json={"body": "x"},
                         headers={"Authorization": f"Bearer {sandbox.token}"}, timeout=5).status_code == 201
    sandbox.clear_faults()
    assert [r["status"] for r in sandbox.requests()] == [502, 502, 502, 201]
    slow = sandbox.fault("/channels", latency_ms=300)
    started = time.monotonic()
    list(client.list_channels())
    assert time.monotonic() - started >= 0.3 and slow > 0
    list(client.list_tags())
    assert sandbox.reset("empty") == 0
    assert sandbox.requests() == [] and list(client.list_items()) == []
    assert sandbox.reset() >= 30


def test_keep_alive_one_connection_serves_many_calls(sandbox):
    conn = http.client.HTTPConnection(sandbox.url.removeprefix("http://"), timeout=10)
    auth = {"Authorization": f"Bearer {sandbox.token}"}
    sockets = set()
    for path in ("/tags?limit=1", "/channels", "/nope", "/tags?limit=1"):
        conn.request("GET", path, headers=auth)
        response = conn.getresponse()
        response.read()
        assert response.status in (200, 404) and response.version == 11 and not response.will_close
        sockets.add(id(conn.sock))
    assert len(sockets) == 1, "every call should travel on the first connection"
    conn.close()


def test_a_slow_call_does_not_hold_up_other_connections(sandbox):
    sandbox.fault("/channels", latency_ms=1500)
    started = time.monotonic()
    slow = threading.Thread(target=lambda: list(sandbox.client().list_channels()))
    slow.start()
    time.sleep(0.1)
    assert list(sandbox.client().list_tags()) and time.monotonic() - started < 1.0
    slow.join(10)
    assert time.monotonic() - started >= 1.4


def test_sigterm_stops_it_promptly_and_cleanly(sandbox):
    conn = http.client.HTTPConnection(sandbox.url.removeprefix("http://"), timeout=10)
    conn.request("GET", "/health")  # an open keep-alive connection must not hold the shutdown up
    assert conn.getresponse().read() and conn.sock is not None
    started = time.monotonic()
    sandbox.proc.send_signal(signal.SIGTERM)
    assert sandbox.proc.wait(10) == 0 and time.monotonic() - started < 3
    conn.close()


def test_a_seed_that_is_not_json_is_refused_before_serving(tmp_path):
    seed = tmp_path / "seed.json"
    seed.write_text('{"publications": [')
    done = subprocess.run([str(BIN / "prepr-automation"), "sandbox", "--port", str(free_port()), "--data-dir",
                           str(tmp_path), "--seed", str(seed)], capture_output=True, text=True, timeout=30,
                          env={**os.environ, "PREPR_ACCESS_TOKEN": "t"})
    assert done.returncode == 2 and "--seed: not JSON" in done.stderr
