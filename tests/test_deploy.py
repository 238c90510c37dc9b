"""What a Heroku-style platform relies on: Procfile, app.json and settings agree; TLS Redis works."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import redis
import requests

from prepr_automation import store
from prepr_automation.settings import load_settings
from tests.conftest import BIN, ROOT, Processes, free_port
from tests.webhooks.test_processes import KEY, post, start_web

SETTINGS_SOURCE = (ROOT / "prepr_automation" / "settings.py").read_text()
ENV_NAMES = set(re.findall(r'_parse\(env, "([A-Z_]+)"', SETTINGS_SOURCE))
PROCESS_ENV = {"WEB_CONCURRENCY", "WEB_CONNECTIONS", "WORKER_CONCURRENCY"}  # read by the Procfile, not settings


def procfile() -> dict[str, str]:
    lines = (ROOT / "Procfile").read_text().splitlines()
    return dict(line.split(":", 1) for line in lines if line.strip() and not line.startswith("#"))


def test_procfile_has_the_three_process_types() -> None:
    processes = {name: command.strip() for name, command in procfile().items()}
    assert set(processes) == {"web", "worker", "release"}
    assert processes["web"].startswith('gunicorn "webhooks:create_app()"') and "$PORT" in processes["web"]
    assert processes["worker"].startswith("celery -A tasks worker") and "celery,bulk" in processes["worker"]
    assert processes["release"] == "prepr-automation validate"


def test_app_json_describes_every_setting_and_nothing_else() -> None:
    app = json.loads((ROOT / "app.json").read_text())
    described = set(app["env"])
    assert ENV_NAMES - {"CELERY_BROKER_URL", "PORT", "DATA_DIR"} <= described, ENV_NAMES - described
    assert described <= ENV_NAMES | PROCESS_ENV, described - ENV_NAMES - PROCESS_ENV
    assert all(spec.get("description") for spec in app["env"].values())
    assert {name for name, spec in app["env"].items() if spec.get("required")} == {
        "PREPR_WEBHOOK_SECRETS", "PREPR_ACCESS_TOKEN"}
    assert set(app["formation"]) == {"web", "worker"}
    assert any("redis" in addon["plan"] for addon in app["addons"])
    for name, spec in app["env"].items():  # every default in app.json parses as the service reads it
        if "value" in spec and name in ENV_NAMES:
            load_settings({name: spec["value"]})


def test_readme_documents_every_setting() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = [name for name in ENV_NAMES | PROCESS_ENV if f"`{name}`" not in readme]
    assert not missing


@pytest.fixture
def tls_redis(processes: Processes, tmp_path: Path) -> str:
    if not shutil.which("openssl"):
        pytest.fail("openssl is needed to make the test certificate")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(tmp_path / "key.pem"),
                    "-out", str(tmp_path / "cert.pem"), "-days", "1", "-subj", "/CN=localhost"],
                   check=True, capture_output=True)
    port = free_port()
    processes.start(["redis-server", "--port", "0", "--tls-port", str(port), "--tls-cert-file",
                     str(tmp_path / "cert.pem"), "--tls-key-file", str(tmp_path / "key.pem"),
                     "--tls-auth-clients", "no", "--save", "", "--bind", "127.0.0.1"], {}, "tls-redis")
    url = f"rediss://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            redis.Redis.from_url(url, ssl_cert_reqs="none").ping()
            return url
        except redis.ConnectionError:
            time.sleep(0.1)
    pytest.fail("TLS redis-server did not start")


def test_tls_redis_url_works_for_web_and_worker(processes: Processes, tls_redis: str, tmp_path: Path) -> None:
    """A managed Redis over TLS with a self-signed certificate (as Heroku's) and REDIS_TLS_VERIFY=0."""
    rules = tmp_path / "rules.yaml"
    rules.write_text("version: 1\nrules:\n  - id: podcasts\n    on: content_item.changed\n"
                     "    when: {label: {eq: Podcast}}\n    do: [{add_tags: [audio]}]\n")
    env = {"REDIS_URL": tls_redis, "REDIS_TLS_VERIFY": "0", "RULES_PATH": str(rules)}
    url = start_web(processes, tls_redis, **env)
    processes.start([str(BIN / "celery"), "-A", "tasks", "worker", "-c", "1", "-Q", "celery,bulk",
                     "--without-gossip", "--without-mingle"],
                    {**env, "CELERY_BROKER_URL": tls_redis, "PREPR_ACCESS_TOKEN": "t"}, "tls-worker")
    body = json.dumps({"id": "tls-1", "event": "content_item.changed", "payload": {"id": "x", "label": "Post"}})
    assert post(url, body.encode()).status_code == 202
    client = store.redis_client(tls_redis, 5.0, False)
    deadline = time.monotonic() + 30
    while not client.hexists(store.trace_key("tls-1"), "run"):
        assert time.monotonic() < deadline, "the worker did not process the event over TLS"
        time.sleep(0.1)
    assert requests.get(url + "/health", timeout=5).json()["broker"] == "up"
    assert KEY not in json.dumps(store.read_trace(client, "tls-1"))
