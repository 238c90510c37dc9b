"""Installed from its wheel (not editable, no source tree), `dev` and the example files work from an
empty folder. The wheel is built here (offline: no build isolation) and installed with --no-deps into
a fresh venv; the dependencies already installed for the tests are made reachable by a .pth line
that appends their site-packages (a .pth there is not processed, so this checkout's editable install
stays out of sight and the project can only come from the wheel)."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests

from tests.conftest import Processes, free_port, no_survivors
from tests.fresh import clean_copy, fresh_venv, without_source
from tests.test_dev import READY, clean_env


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("wheel")
    source = clean_copy(base / "source")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
                    "-w", str(base / "dist"), str(source)], check=True, capture_output=True, timeout=300)
    wheel = next((base / "dist").glob("prepr_automation-*.whl"))
    venv = base / "venv"
    python = fresh_venv(venv)
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q",
                    "--no-deps", "--no-index", str(wheel)], check=True, capture_output=True, timeout=300,
                   env=without_source())  # with a source tree on the path pip takes the project as installed
    return venv


def test_the_wheel_carries_everything_dev_needs(installed: Path, tmp_path: Path, processes: Processes) -> None:
    python, cmd = installed / "bin" / "python", installed / "bin" / "prepr-automation"
    marker = f"PA_DEV_TEST={uuid.uuid4()}"
    web, sandbox = free_port(), free_port()
    env = clean_env(marker, PORT=str(web), SANDBOX_PORT=str(sandbox))
    env.pop("PYTHONPATH", None)  # as without_source()
    where = subprocess.run([str(python), "-c", "import cli, prepr_automation, sandbox, webhooks; "
                            "print(cli.__file__, prepr_automation.__file__, sandbox.__file__, webhooks.__file__)"],
                           cwd=tmp_path, env=env, capture_output=True, text=True, check=True).stdout.split()
    assert all(path.startswith(str(installed)) for path in where), where  # the wheel's, not this checkout's
    empty = subprocess.run([str(cmd), "validate"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert empty.returncode == 1 and "no such rule file or folder" in empty.stdout + empty.stderr

    log = tmp_path / "dev.log"
    proc = subprocess.Popen([str(cmd), "dev"], cwd=tmp_path, env=env, stdout=open(log, "wb"),
                            stderr=subprocess.STDOUT, start_new_session=True)
    processes.procs.append(proc)
    deadline = time.monotonic() + 90
    while READY not in log.read_text(errors="replace"):
        assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.2)
    text = log.read_text()
    assert "Traceback" not in text and "copied the example rules" in text
    assert {p.name for p in (tmp_path / "rules").iterdir()} >= {"tagging.yaml", "00-guards.yaml", "vocab"}
    sent = subprocess.run([str(cmd), "send", "examples/content_item.changed.json"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)
    assert sent.returncode == 0 and sent.stdout.startswith("202 "), sent.stdout + sent.stderr

    event_id = json.loads((tmp_path / "examples" / "content_item.changed.json").read_text())["id"]
    _open_every_console_page(f"http://127.0.0.1:{web}", json.loads((tmp_path / "var" / "dev.json").read_text()),
                             event_id)

    valid = subprocess.run([str(cmd), "validate"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert valid.returncode == 0, valid.stdout + valid.stderr
    os.killpg(proc.pid, signal.SIGINT)
    assert proc.wait(40) == 0
    no_survivors(marker)


def _open_every_console_page(web: str, setup: dict[str, str], event_id: str) -> None:
    """Sign in as an operator does and open each page: every template and the stylesheet must be in
    the wheel (a missing one answers 500 TemplateNotFound)."""
    session = requests.Session()
    login = session.get(f"{web}/console/login", timeout=10)
    assert login.status_code == 200 and "Admin token" in login.text, login.text[:500]
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', login.text).group(1)
    signed = session.post(f"{web}/console/login", data={"csrf_token": csrf, "token": setup["ADMIN_TOKEN"]}, timeout=10)
    assert signed.status_code == 200 and "<h1>Events</h1>" in signed.text, signed.text[:500]
    deadline = time.monotonic() + 60
    while event_id not in session.get(f"{web}/console", timeout=10).text:  # the worker has traced the sent event
        assert time.monotonic() < deadline, "the sent event never reached the list"
        time.sleep(0.5)
    pages = {"": "Events", f"/events/{event_id}": event_id, f"/events/{event_id}/explain": "dry run",
             "/dead-letters": "Dead letters", "/rules": "tag-football-as-sport", "/status": "maxmemory-policy",
             "/events/no-such-event": "Not found"}
    for path, expected in pages.items():
        answer = session.get(f"{web}/console{path}", timeout=10)
        assert answer.status_code == (404 if "no-such" in path else 200), (path, answer.text[:500])
        assert expected in answer.text and "Traceback" not in answer.text, (path, answer.text[:500])
    css = session.get(f"{web}/console/console.css", timeout=10)
    assert css.status_code == 200 and "table" in css.text
