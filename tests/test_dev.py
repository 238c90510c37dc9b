"""`prepr-automation dev` (what `make run` runs), as a newcomer meets it: in an empty folder, with no
configuration and no services, an editor's change to a demo article gets it tagged end to end; the
other commands run in that folder use its set-up; and however dev ends, nothing is left running
(checked in the process table: every process started carries a marker in its environment)."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import requests

from tests.conftest import BIN, ROOT, Processes, free_port, no_survivors, survivors

CONFIG = ("CELERY_BROKER_URL", "REDIS_URL", "PREPR_ACCESS_TOKEN", "PREPR_WEBHOOK_SECRETS", "PREPR_API_URL",
          "PREPR_TRACKING_URL", "PREPR_CUSTOMERS_URL", "PREPR_API", "PREPR_AUTOMATION_USER_ID", "ADMIN_TOKEN",
          "DATA_DIR", "RULES_PATH", "PORT")
READY = "Ctrl-C stops everything."


def clean_env(marker: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CONFIG}
    name, value = marker.split("=", 1)
    return {**env, name: value, **extra}


def _start(processes: Processes, folder: Path, name: str, marker: str, pipe: bool = False,
           binary: Path = BIN / "prepr-automation", rules: Path | None = ROOT / "rules"):
    web, sandbox = free_port(), free_port()
    env = clean_env(marker, PORT=str(web), SANDBOX_PORT=str(sandbox))
    if rules is not None:
        env["RULES_PATH"] = str(rules)
    log_path = folder / f"{name}.log"
    if pipe:  # as `make run | tee log` in a terminal: Ctrl-C reaches the shell, dev and tee alike
        args = ["sh", "-c", f"{binary} dev 2>&1 | tee {log_path} >/dev/null"]
        proc = subprocess.Popen(args, cwd=folder, env=env, start_new_session=True)
    else:
        proc = subprocess.Popen([str(binary), "dev"], cwd=folder, env=env, stdout=open(log_path, "wb"),
                                stderr=subprocess.STDOUT, start_new_session=True)
    processes.procs.append(proc)
    deadline = time.monotonic() + 90
    text = ""
    while READY not in text:
        assert proc.poll() is None and time.monotonic() < deadline, text[-3000:]
        time.sleep(0.2)
        text = log_path.read_text(errors="replace") if log_path.exists() else ""
    return proc, text, f"http://127.0.0.1:{sandbox}", f"http://127.0.0.1:{web}"


def _tags(sandbox: str, token: str, item: str) -> list[str]:
    item_doc = requests.get(f"{sandbox}/content_items/{item}", headers={"Authorization": f"Bearer {token}"},
                            timeout=5).json()
    return [t["body"] for t in item_doc["items"]["en-GB"]["tags"]["items"]]


def _cli(folder: Path, marker: str, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "prepr-automation"), *args], cwd=folder, env=clean_env(marker, **env),
                          capture_output=True, text=True, timeout=120)


def test_dev_tags_a_changed_demo_article_end_to_end(processes: Processes, tmp_path: Path) -> None:
    marker = f"PA_DEV_TEST={uuid.uuid4()}"
    proc, log, sandbox, web = _start(processes, tmp_path, "first", marker, pipe=True)
    assert re.search(r"dev@\S+ ready\.", log) and log.index("dev@") < log.index("prepr-automation is running")
    assert log.rstrip().endswith(READY)  # the tour is the last thing printed
    step1 = next(line.strip() for line in log.splitlines() if line.strip().startswith("curl -s -o /dev/null -X PUT"))
    item = re.search(r"/content_items/([0-9a-f-]{36})", step1).group(1)
    token = re.search(r"Authorization: Bearer (\S+)'", step1).group(1)
    editor = re.search(r"X-Sandbox-User: (\S+)'", step1).group(1)
    body = re.search(r"-d '(\{.*\})'", step1).group(1)
    assert "sport" not in _tags(sandbox, token, item)
    before = requests.get(f"{sandbox}/content_items/{item}", headers={"Authorization": f"Bearer {token}"},
                          timeout=5).json()["items"]
    sent = json.loads(body)  # a valid content_items PUT: the locale named, all its fields, one changed
    assert sent["locales"] == ["en-GB"] and set(sent["items"]["en-GB"]) == set(before["en-GB"])
    assert requests.get(f"{sandbox}/publications", headers={"Authorization": f"Bearer {token}"},
                        timeout=5).status_code == 404  # dev's sandbox speaks the Mutation API alone

    answer = requests.put(f"{sandbox}/content_items/{item}", data=body, timeout=5, headers={
        "Authorization": f"Bearer {token}", "X-Sandbox-User": editor, "Content-Type": "application/json"})
    assert answer.status_code == 200
    edited = answer.json()["items"]["en-GB"]
    assert edited["intro"]["body"].startswith("Tonight") and edited["title"] == before["en-GB"]["title"]
    assert edited["cover"] == before["en-GB"]["cover"] and answer.json()["items"].get("nl-NL") == before.get("nl-NL")
    deadline = time.monotonic() + 60
    while not {"sport", "football", "tennis"} <= set(_tags(sandbox, token, item)):
        assert time.monotonic() < deadline, (tmp_path / "first.log").read_text()[-4000:]
        time.sleep(0.2)
    log = (tmp_path / "first.log").read_text()
    event_id = re.search(rf"event (\S+) content_item.changed publication {item}: done: 1 call\(s\) sent", log).group(1)

    # Commands run in this folder use dev's set-up (token, sandbox, secret, port, Redis) with no export.
    traced = _cli(tmp_path, marker, "trace", event_id)
    assert traced.returncode == 0 and "outcome: done" in traced.stdout, traced.stderr
    dry = _cli(tmp_path, marker, "backfill", "tag-football-as-sport", "--dry-run")
    assert dry.returncode == 0 and "dry run: would enqueue" in dry.stdout, dry.stderr
    explained = _cli(tmp_path, marker, "explain", "var/demo-event.json", "--fetch")  # the tour's step 4
    assert explained.returncode == 0 and "tag-football-as-sport" in explained.stdout, explained.stderr
    sent = _cli(tmp_path, marker, "send", str(ROOT / "examples" / "content_item.changed.json"))
    assert sent.returncode == 0 and sent.stdout.startswith("202 "), sent.stdout + sent.stderr
    ids = set()
    for _ in range(2):  # the tour's step 5: a new delivery each time, never "duplicate"
        fresh = _cli(tmp_path, marker, "send", "--new-id", str(ROOT / "examples" / "content_item.changed.json"))
        assert fresh.returncode == 0 and fresh.stdout.startswith("202 ") and "queued" in fresh.stdout, fresh.stdout
        ids.add(re.search(r'"event_id": "([^"]+)"', fresh.stdout).group(1))
    assert len(ids) == 2 and "send --new-id" in log

    setup, event = (tmp_path / "var" / "dev.json").read_bytes(), (tmp_path / "var" / "demo-event.json").read_bytes()
    second = _cli(tmp_path, marker, "dev")  # a second `make run` here: says which runs, touches nothing
    assert second.returncode == 1 and "Traceback" not in second.stderr, second.stdout + second.stderr
    running = re.search(r"already running in this folder \(pid (\d+), console (\S+)\)", second.stderr)
    assert running and running.group(2) == f"{web}/console", second.stderr
    assert b"dev" in Path(f"/proc/{running.group(1)}/cmdline").read_bytes() and not second.stdout
    assert (tmp_path / "var" / "dev.json").read_bytes() == setup
    assert (tmp_path / "var" / "demo-event.json").read_bytes() == event
    assert requests.get(f"{web}/health", timeout=5).status_code == 200
    other = _cli(tmp_path, marker, "backfill", "tag-football-as-sport", "--dry-run",
                 PREPR_API_URL="http://127.0.0.1:9")  # the environment wins, and no sandbox token goes there
    assert other.returncode == 2 and "PREPR_ACCESS_TOKEN is required" in other.stderr
    assert (tmp_path / "var" / "redis.sock").exists()  # dev's Redis, left running by the commands

    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C in the terminal reaches the whole group, tee too
    proc.wait(40)
    no_survivors(marker, timeout=30)
    assert not (tmp_path / "var" / "redis.sock").exists()  # the embedded Redis is down too

    proc, _, sandbox, _ = _start(processes, tmp_path, "second", marker)  # a second start reuses var/
    recorded = json.loads((tmp_path / "var" / "dev.json").read_text())
    assert recorded["PREPR_ACCESS_TOKEN"] == token and recorded["PREPR_CUSTOMERS_URL"] == sandbox
    assert {"sport", "football", "tennis"} <= set(_tags(sandbox, token, item))
    os.killpg(proc.pid, signal.SIGINT)
    assert proc.wait(40) == 0
    assert (tmp_path / "second.log").read_text().rstrip().endswith("stopped.")
    no_survivors(marker)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_a_signal_to_dev_stops_every_child(processes: Processes, tmp_path: Path, sig: int) -> None:
    marker = f"PA_DEV_TEST={uuid.uuid4()}"
    proc, _, _, _ = _start(processes, tmp_path, "dev", marker)
    assert len(survivors(marker)) >= 6  # dev, redis, sandbox, gunicorn and its worker, celery and its pool
    proc.send_signal(sig)  # to dev alone, as a process manager or a closed terminal does
    assert proc.wait(40) == 0
    no_survivors(marker)


def test_a_crashed_child_stops_the_others(processes: Processes, tmp_path: Path) -> None:
    marker = f"PA_DEV_TEST={uuid.uuid4()}"
    proc, _, _, web = _start(processes, tmp_path, "dev", marker)
    gunicorn = next(line.split()[0] for line in subprocess.run(
        ["ps", "-o", "pid=,args=", "--ppid", str(proc.pid)], capture_output=True, text=True).stdout.splitlines()
        if "gunicorn" in line)
    os.kill(int(gunicorn), signal.SIGKILL)
    assert proc.wait(40) == 1
    assert "web exited with status -9; stopping everything" in (tmp_path / "dev.log").read_text()
    no_survivors(marker)


def test_dev_killed_outright_leaves_nothing_running(processes: Processes, tmp_path: Path) -> None:
    """SIGKILL runs no handler: the children learn of it from the kernel (PR_SET_PDEATHSIG)."""
    marker = f"PA_DEV_TEST={uuid.uuid4()}"
    proc, _, _, _ = _start(processes, tmp_path, "dev", marker)
    proc.kill()
    proc.wait(10)
    no_survivors(marker, timeout=40)


def test_a_store_command_without_redis_url_leaves_no_redis_running(tmp_path: Path) -> None:
    marker = f"PA_DEV_TEST={uuid.uuid4()}"
    listed = _cli(tmp_path, marker, "dead-letters", "list")
    assert listed.returncode == 0 and "0 dead letter(s)" in listed.stdout, listed.stderr
    assert (tmp_path / "var" / "redis.log").exists()  # it did need the embedded Redis
    no_survivors(marker, timeout=2)
    traced = _cli(tmp_path, marker, "trace", "no-such-event")
    assert traced.returncode == 1 and "no trace for no-such-event" in traced.stderr
    no_survivors(marker, timeout=2)
