"""docs/deploy.md walked as a Procfile platform runs it: `pip install -r requirements.txt` into a fresh
venv, the project's files in an app folder (not installed, no PYTHONPATH), each Procfile line run
from that folder by a shell. The web goes up before the webhook exists (SPEC §5), then gets its key
(a config change restarts it), and the worker handles a delivery against the sandbox."""
from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
import requests

from prepr_automation import store
from tests.conftest import Processes, Sandbox, free_port, wait_http
from tests.fresh import clean_copy, fresh_venv, install_requirements, without_source
from tests.tasks.conftest import find_item
from tests.test_deploy import procfile
from tests.webhooks.test_processes import KEY, post
from webhooks.app import NOT_CONFIGURED


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(app folder, venv bin) as the platform's build leaves them."""
    base = tmp_path_factory.mktemp("platform")
    app = clean_copy(base / "app")
    python = fresh_venv(base / "venv")
    install_requirements(python, app / "requirements.txt")
    return app, python.parent


def _run_line(processes: Processes, app: Path, bin_dir: Path, line: str, name: str, **env: str) -> subprocess.Popen:
    """One Procfile line, as a platform runs it: `sh -c` in the app folder, the venv's bin first."""
    full = without_source(PATH=f"{bin_dir}:/usr/bin:/bin", **env)
    log = open(processes.tmp / f"{name}.log", "wb")
    proc = processes.supervisor.start(["sh", "-c", line], name=name, env=full, cwd=str(app), stdout=log,
                                      stderr=subprocess.STDOUT)
    proc.log_path = processes.tmp / f"{name}.log"  # type: ignore[attr-defined]
    return proc


def test_each_procfile_line_runs_from_the_app_folder(platform: tuple[Path, Path], processes: Processes,
                                                     redis_url: str, sandbox: Sandbox) -> None:
    app, bin_dir = platform
    lines = procfile()
    base = {"REDIS_URL": redis_url, "WEB_CONCURRENCY": "1", "WORKER_CONCURRENCY": "2", "COALESCE_SECONDS": "0",
            **sandbox.env}
    base.pop("PREPR_AUTOMATION_USER_ID")

    release = subprocess.run(["sh", "-c", lines["release"]], cwd=app, capture_output=True, text=True, timeout=120,
                             env=without_source(PATH=f"{bin_dir}:/usr/bin:/bin", **base))
    assert release.returncode == 0, release.stdout + release.stderr

    port = free_port()  # step 3: deployed before the webhook exists
    web = _run_line(processes, app, bin_dir, lines["web"], "web-unconfigured", PORT=str(port), **base)
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/health", proc=web, timeout=60)
    assert requests.get(url + "/webhooks/prepr", timeout=5).status_code == 200  # Prepr's check of the URL
    assert post(url, b'{"id": "too-early", "event": "content_item.changed", "payload": {"id": "x"}}').status_code == 503
    assert requests.get(url + "/health", timeout=5).json()["webhook"] == NOT_CONFIGURED
    processes.stop(web)

    # step 4: `config:set PREPR_WEBHOOK_SECRETS=<webhook id>` restarts the dynos with the key
    web = _run_line(processes, app, bin_dir, lines["web"], "web", PORT=str(port), PREPR_WEBHOOK_SECRETS=KEY, **base)
    worker = _run_line(processes, app, bin_dir, lines["worker"], "worker", **base)
    wait_http(url + "/health", proc=web, timeout=60)
    assert "webhook" not in requests.get(url + "/health", timeout=5).json()
    item = find_item(sandbox, "Late winner")["id"]
    body = json.dumps({"id": "platform-1", "event": "content_item.changed", "created_on": int(time.time()),
                       "payload": {"id": item}}).encode()
    assert post(url, body).status_code == 202
    client = store.redis_client(redis_url)
    deadline = time.monotonic() + 60
    while not client.hexists(store.trace_key("platform-1"), "run"):
        assert worker.poll() is None, worker.log_path.read_text()[-3000:]  # type: ignore[attr-defined]
        assert time.monotonic() < deadline, worker.log_path.read_text()[-3000:]  # type: ignore[attr-defined]
        time.sleep(0.2)
    run = store.read_trace(client, "platform-1")["run"]
    assert run["outcome"] != "dead-lettered" and run["calls"], run
    log = worker.log_path.read_text()  # type: ignore[attr-defined]
    assert "No module named" not in log and "Traceback" not in log
