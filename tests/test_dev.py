"""`prepr-automation dev` (what `make run` runs), as a newcomer meets it: in an empty folder, with no
configuration and no services, an editor's change to a demo article gets it tagged end to end."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import requests

from tests.conftest import BIN, ROOT, Processes, free_port

CONFIG = ("CELERY_BROKER_URL", "REDIS_URL", "PREPR_ACCESS_TOKEN", "PREPR_WEBHOOK_SECRETS", "PREPR_API_URL",
          "PREPR_TRACKING_URL", "PREPR_AUTOMATION_USER_ID", "ADMIN_TOKEN", "DATA_DIR", "RULES_PATH")


def _start(processes: Processes, folder: Path, name: str):
    web, sandbox = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k not in CONFIG}
    env.update(PORT=str(web), SANDBOX_PORT=str(sandbox), RULES_PATH=str(ROOT / "rules"))
    log = open(folder / f"{name}.log", "wb")

    proc = subprocess.Popen([str(BIN / "prepr-automation"), "dev"], cwd=folder, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    processes.procs.append(proc)
    deadline = time.monotonic() + 60
    text = ""
    while "Ctrl-C stops everything" not in text:
        assert proc.poll() is None and time.monotonic() < deadline, text[-3000:]
        time.sleep(0.2)
        text = (folder / f"{name}.log").read_text(errors="replace")
    return proc, text, f"http://127.0.0.1:{sandbox}"


def _tags(sandbox: str, token: str, item: str) -> list[str]:
    item_doc = requests.get(f"{sandbox}/publications/{item}", headers={"Authorization": f"Bearer {token}"},
                            timeout=5).json()
    return [t["body"] for t in item_doc["items"]["en-GB"]["tags"]["items"]]


def test_dev_tags_a_changed_demo_article_end_to_end(processes: Processes, tmp_path: Path) -> None:
    proc, tour, sandbox = _start(processes, tmp_path, "first")
    step1 = next(line.strip() for line in tour.splitlines() if line.strip().startswith("curl -s -o /dev/null -X PUT"))
    item = re.search(r"/publications/([0-9a-f-]{36})", step1).group(1)
    token = re.search(r"Authorization: Bearer (\S+)'", step1).group(1)
    editor = re.search(r"X-Sandbox-User: (\S+)'", step1).group(1)
    body = re.search(r"-d '(\{.*\})'", step1).group(1)
    assert "sport" not in _tags(sandbox, token, item)

    answer = requests.put(f"{sandbox}/publications/{item}", data=body, timeout=5, headers={
        "Authorization": f"Bearer {token}", "X-Sandbox-User": editor, "Content-Type": "application/json"})
    assert answer.status_code == 200
    deadline = time.monotonic() + 60
    while not {"sport", "football", "tennis"} <= set(_tags(sandbox, token, item)):
        assert time.monotonic() < deadline, (tmp_path / "first.log").read_text()[-4000:]
        time.sleep(0.2)
    log = (tmp_path / "first.log").read_text()
    assert re.search(rf"event \S+ content_item.changed publication {item}: done: 1 call\(s\) sent", log)

    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C in the terminal reaches the whole group
    assert proc.wait(40) == 0
    assert "stopped." in (tmp_path / "first.log").read_text()
    assert not (tmp_path / "var" / "redis.sock").exists()  # the embedded Redis is down too

    proc, _, sandbox = _start(processes, tmp_path, "second")  # a second start reuses var/
    assert (tmp_path / "var" / "dev-access-token").read_text().strip() == token
    assert {"sport", "football", "tennis"} <= set(_tags(sandbox, token, item))
    os.killpg(proc.pid, signal.SIGINT)
    assert proc.wait(40) == 0
