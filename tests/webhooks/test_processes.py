"""The receiver as it runs in production: gunicorn processes, real Redis, a real Celery worker."""
from __future__ import annotations

import json
import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import redis
import requests

from prepr_automation import store
from tests.conftest import BIN, Processes, free_port, read_deliveries, wait_http
from tests.webhooks.deliveries import recent
from tasks.messages import EVENTS_QUEUE as QUEUE
from webhooks.app import NOT_CONFIGURED
from webhooks.signature import sign

KEY = "process-test-key"


def start_web(processes: Processes, broker: str, **env: str) -> str:
    port = free_port()
    # as the Procfile serves it: gevent workers, no --preload (gevent patches before the app loads)
    proc = processes.start(
        [str(BIN / "gunicorn"), "webhooks:create_app()", "--bind", f"127.0.0.1:{port}",
         "--worker-class", "gevent", "--workers", "2", "--worker-connections", "100"],
        {"PREPR_WEBHOOK_SECRETS": KEY, "CELERY_BROKER_URL": broker, "ADMIN_TOKEN": "adm",
         "MAX_BODY_BYTES": "2048", **env}, "web")
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/webhooks/prepr", proc=proc)
    return url


def post(url: str, body: bytes) -> requests.Response:
    return requests.post(url + "/webhooks/prepr", data=body, timeout=10,
                         headers={"Content-Type": "application/json", "Prepr-Signature": sign(body, KEY)})


def delivery(event_id: str, event: str = "content_item.changed") -> bytes:
    return json.dumps({"id": event_id, "event": event, "created_on": int(time.time()), "payload": {"id": "x"}}).encode()


def test_every_202_is_on_the_broker(processes: Processes, redis_url: str, redis_client: redis.Redis) -> None:
    url = start_web(processes, redis_url, MAX_BODY_BYTES="1048576")
    bodies = [recent(raw) for raw in read_deliveries(limit=600)]
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda b: post(url, b), bodies))
    statuses = [a.status_code for a in answers]
    assert statuses.count(202) == len({json.loads(b)["id"] for b in bodies})
    assert set(statuses) <= {200, 202}
    queued = [a for a in answers if a.status_code == 202 and a.json()["status"] == "queued"]
    assert queued  # the example rules listen to content items; assets etc. are answered "ignored"
    assert redis_client.llen(QUEUE) == len(queued)


def test_concurrent_copies_enqueue_once(processes: Processes, redis_url: str, redis_client: redis.Redis) -> None:
    url = start_web(processes, redis_url)
    body = delivery("same-delivery")
    with ThreadPoolExecutor(20) as pool:
        responses = list(pool.map(lambda _: post(url, body), range(20)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 19 + [202]
    assert redis_client.llen(QUEUE) == 1
    trace = requests.get(url + "/events/same-delivery", headers={"Authorization": "Bearer adm"}, timeout=5).json()
    assert trace["duplicates"] == 19


def _redis_server(processes: Processes, port: int, data: Path) -> subprocess.Popen:
    proc = processes.start(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data),
                            "--appendonly", "yes", "--save", ""], {}, f"redis-{port}-{time.time()}")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if redis.Redis(port=port).ping():
                return proc
        except redis.ConnectionError:
            time.sleep(0.05)
    raise TimeoutError("redis-server did not start")


def test_broker_down_is_503_and_nothing_marked_seen(processes: Processes, tmp_path: Path) -> None:
    port = free_port()
    server = _redis_server(processes, port, tmp_path)
    url = start_web(processes, f"redis://127.0.0.1:{port}/0")
    assert post(url, delivery("before")).status_code == 202
    processes.stop(server)

    started = time.monotonic()
    down = post(url, delivery("during"))
    elapsed = time.monotonic() - started
    assert down.status_code == 503 and down.headers["Retry-After"].isdigit()
    assert elapsed < 3
    assert requests.get(url + "/health", timeout=5).status_code == 503

    _redis_server(processes, port, tmp_path)
    client = redis.Redis(port=port)
    assert client.exists(store.seen_key("before")) and not client.exists(store.seen_key("during"))
    retry = post(url, delivery("during"))  # Prepr's retry of the 503'd delivery
    assert retry.status_code == 202
    assert client.llen(QUEUE) == 2


def _raw_chunked(url: str, chunks: list[bytes], signature: str) -> int:
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        head = (f"POST /webhooks/prepr HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                f"Prepr-Signature: {signature}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
        sock.sendall(head.encode())
        try:
            for chunk in chunks:
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer and close before reading everything
        return int(sock.recv(4096).split(b" ", 2)[1])


def test_chunked_bodies_are_limited_without_content_length(processes: Processes, redis_url: str,
                                                            redis_client: redis.Redis) -> None:
    url = start_web(processes, redis_url)
    small = delivery("chunked-ok")
    assert _raw_chunked(url, [small[:10], small[10:]], sign(small, KEY)) == 202
    big = b'{"id": "big", "event": "x", "payload": {"pad": "' + b"x" * 10_000 + b'"}}'
    assert _raw_chunked(url, [big[i:i + 1000] for i in range(0, len(big), 1000)], sign(big, KEY)) == 413
    assert redis_client.llen(QUEUE) == 1


def test_a_real_worker_consumes_what_the_receiver_queued(processes: Processes, redis_url: str,
                                                          redis_client: redis.Redis, tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("version: 1\nrules:\n  - id: podcasts-only\n    on: content_item.changed\n"
                     "    when: {label: {eq: Podcast}}\n    do: [{add_tags: [audio]}]\n")
    url = start_web(processes, redis_url, RULES_PATH=str(rules))
    processes.start([str(BIN / "celery"), "-A", "tasks", "worker", "-Q", "celery,bulk", "-c", "1",
                     "--without-gossip", "--without-mingle", "--loglevel", "WARNING"],
                    {"CELERY_BROKER_URL": redis_url, "PREPR_ACCESS_TOKEN": "t", "RULES_PATH": str(rules),
                     "PREPR_API_URL": "http://127.0.0.1:9", "COALESCE_SECONDS": "0"}, "worker")
    body = json.dumps({"id": "consumed-1", "event": "content_item.changed", "payload": {"id": "x", "label": "Post"}})
    assert post(url, body.encode()).status_code == 202
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not redis_client.hexists(store.trace_key("consumed-1"), "run"):
        time.sleep(0.1)
    trace = requests.get(url + "/events/consumed-1", headers={"Authorization": "Bearer adm"}, timeout=5).json()
    assert trace["received"]["status"] == "queued"
    assert trace["run"]["outcome"] == "no rule matched"  # decided from the payload alone: no fetch
    assert trace["run"]["calls"] == []
    assert redis_client.llen(QUEUE) == 0
    ignored = json.dumps({"id": "ignored-1", "event": "asset.changed", "payload": {"id": "a"}}).encode()
    assert post(url, ignored).json()["status"] == "ignored"
    health = requests.get(url + "/health", timeout=5).json()
    assert health["rules"] == {"path": str(rules), "loaded": True, "files": 1, "rules": 1, "enabled": 1}


def test_the_web_starts_before_the_webhook_exists(processes: Processes, redis_url: str,
                                                  redis_client: redis.Redis) -> None:
    """SPEC §5: Prepr shows the key (the webhook's id) only after its GET found the URL, so the web
    is deployed first: GET 200, every POST 503 + Retry-After (nothing unsigned accepted), said so."""
    url = start_web(processes, redis_url, PREPR_WEBHOOK_SECRETS="")
    assert requests.get(url + "/webhooks/prepr", timeout=5).status_code == 200
    for signature in (sign(delivery("early"), KEY), "", "0" * 64):
        answer = requests.post(url + "/webhooks/prepr", data=delivery("early"), timeout=5,
                               headers={"Content-Type": "application/json", "Prepr-Signature": signature})
        assert answer.status_code == 503 and answer.headers["Retry-After"].isdigit(), answer.text
        assert answer.json()["error"] == NOT_CONFIGURED
    health = requests.get(url + "/health", timeout=5)
    assert health.status_code == 200 and health.json()["webhook"] == NOT_CONFIGURED
    assert health.json()["status"] == "not configured"
    assert redis_client.llen(QUEUE) == 0 and not redis_client.exists(store.seen_key("early"))
    log = processes.procs[-1].log_path.read_text()  # type: ignore[attr-defined]
    assert NOT_CONFIGURED in log and "Traceback" not in log


@pytest.mark.parametrize("command,env,line", [
    (["gunicorn", "webhooks:create_app()", "--preload", "--bind", "127.0.0.1:0"],
     {"PREPR_WEBHOOK_SECRETS": "k", "MAX_BODY_BYTES": "lots"}, "error: MAX_BODY_BYTES is malformed"),
    (["gunicorn", "webhooks:create_app()", "--preload", "--bind", "127.0.0.1:0"],
     {"PREPR_WEBHOOK_SECRETS": "k", "REDIS_URL": "http://nope"}, "error: REDIS_URL is malformed"),
    (["celery", "-A", "tasks", "worker", "--without-gossip", "--without-mingle"], {},
     "error: PREPR_ACCESS_TOKEN is required but not set"),
    (["celery", "-A", "tasks", "worker"], {"PREPR_ACCESS_TOKEN": "t", "DRY_RUN": "maybe"},
     "error: DRY_RUN is malformed"),
])
def test_configuration_errors_are_one_line(command: list[str], env: dict, line: str, tmp_path: Path,
                                           redis_url: str) -> None:
    base = {"PATH": str(BIN), "DATA_DIR": str(tmp_path), "CELERY_BROKER_URL": redis_url}
    if "REDIS_URL" in env:
        base.pop("CELERY_BROKER_URL")
    result = subprocess.run([str(BIN / command[0]), *command[1:]], env={**base, **env}, capture_output=True,
                            text=True, timeout=60, cwd=str(Path(__file__).resolve().parents[2]))
    assert result.returncode != 0
    lines = [ln for ln in (result.stdout + result.stderr).splitlines() if ln.strip()]
    assert any(ln.startswith(line) for ln in lines), lines
    assert "Traceback" not in result.stderr
    assert len([ln for ln in lines if ln.startswith("error:")]) == 1
