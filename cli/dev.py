"""`prepr-automation dev` (what `make run` runs): the whole service on one machine, zero set-up.

Starts the embedded Redis under DATA_DIR, the sandbox (a local Prepr with demo content, speaking
the Mutation API of environments created today, customers included; its webhooks are signed and
sent to our web), the web (gunicorn, as in the Procfile) and a worker,
all pointed at each other; then prints a short tour, last, once the worker is ready. Generated
secrets and all data live in DATA_DIR, so a second start picks up where the first stopped; the
set-up is recorded in DATA_DIR/dev.json, where every other command run in this folder finds it.
In an empty folder the example rules (and an example event) are copied in first.

However dev ends (Ctrl-C, also through a pipe as in `make run | tee log`; SIGTERM; SIGHUP; one
child crashing; dev itself failing or killed) it leaves nothing running: see processes.py.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import IO

import click
import requests

from prepr_automation import store
from prepr_automation.processes import Supervisor, on_signals
from prepr_automation.settings import ConfigError, dev_state_path, load_settings, write_dev_state

from .tour import examples, tour

WORKER_NAME = "dev@%h"


class Stopping(Exception):
    """A signal asked dev to stop, or a child ended: leave, stopping everything."""


def _say(text: str) -> None:
    """Print; once the terminal's pipe is gone (`make run | tee` after Ctrl-C) print nowhere."""
    try:
        click.echo(text)
        sys.stdout.flush()
    except (BrokenPipeError, OSError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the interpreter's last flush does not fail either


def _forward(stream: IO[bytes], ready: threading.Event) -> None:
    """Copy the worker's output to ours line by line, noting when it says "dev@host ready."; a
    dead terminal is drained all the same, so the worker never blocks on a full pipe."""
    out: IO[bytes] | None = sys.stdout.buffer
    for line in iter(stream.readline, b""):
        if b"] dev@" in line and line.rstrip().endswith(b" ready."):
            ready.set()
        if out is not None:
            try:
                out.write(line)
                out.flush()
            except (BrokenPipeError, OSError):
                out = None


def _copy_examples(folder: Path) -> Path:
    """An empty folder gets the example rules and event to start from (never overwritten)."""
    source = examples()
    for name in ("rules", "examples"):
        if not (folder / name).exists():
            shutil.copytree(source / name, folder / name)
    _say(f"copied the example rules into {folder / 'rules'} (edit them; RULES_PATH points elsewhere)")
    return folder / "rules"


@click.command("dev")
@click.option("--port", type=int, default=None, help="web port (default: PORT or 5000)")
@click.option("--sandbox-port", type=int, default=lambda: int(os.environ.get("SANDBOX_PORT", 8080)),
              show_default="8080", help="the sandbox's port (env SANDBOX_PORT)")
@click.option("--worker-concurrency", type=int, default=2, show_default=True)
def dev(port: int | None, sandbox_port: int, worker_concurrency: int) -> None:
    """Web + worker + sandbox with demo content, embedded Redis, the example rules."""
    settings = load_settings()
    data_dir = Path(settings.data_dir).resolve()
    claim = _claim(data_dir, port or settings.port)  # held until dev ends; a second dev here stops now
    rules = Path(settings.rules_path)
    if not rules.exists():
        if os.environ.get("RULES_PATH"):
            raise ConfigError(f"RULES_PATH is malformed: {settings.rules_path} does not exist")
        rules = _copy_examples(Path.cwd())
    stop: list[int] = []
    on_signals(stop.append)  # Ctrl-C, SIGTERM, SIGHUP: leave the loops below, then stop in order
    try:
        with Supervisor() as children:
            code = _run(settings, children, stop, data_dir, rules.resolve(), port or settings.port,
                        sandbox_port, worker_concurrency)
    finally:
        if not settings.broker_url:
            store.stop_embedded(str(data_dir))  # the one dev started (a no-op for one it reused)
    _say("stopped.")
    claim.close()
    sys.exit(code)


def _claim(data_dir: Path, port: int) -> IO[str]:
    """Hold DATA_DIR/dev.lock for dev's life (the kernel lets go however dev ends, SIGKILL too). If
    another dev holds it, say which and exit 1 before touching anything: two would share the queue,
    rewrite dev.json and var/'s files, then fail on the port."""
    import fcntl

    data_dir.mkdir(parents=True, exist_ok=True)
    lock = open(data_dir / "dev.lock", "a+")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        try:
            running = json.loads(lock.read())
        except ValueError:
            running = {}
        click.echo(f"error: prepr-automation dev is already running in this folder (pid {running.get('pid', '?')}, "
                   f"console {running.get('console', '?')}); use it, or stop it (Ctrl-C in its terminal) first",
                   err=True)
        sys.exit(1)
    lock.truncate(0)
    lock.write(json.dumps({"pid": os.getpid(), "console": f"http://127.0.0.1:{port}/console"}))
    lock.flush()
    return lock


def _run(settings, children: Supervisor, stop: list[int], data_dir: Path, rules: Path, port: int,
         sandbox_port: int, workers: int) -> int:
    url = store.broker_url(settings)
    web, sandbox = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{sandbox_port}"
    state = _previous(data_dir)
    # a new key has the form of a Prepr webhook id (a UUID), the form `doctor` expects
    secret = os.environ.get("PREPR_WEBHOOK_SECRETS") or state.get("PREPR_WEBHOOK_SECRETS") or str(uuid.uuid4())
    token = settings.access_token or state.get("PREPR_ACCESS_TOKEN") or "sandbox-" + secrets.token_hex(16)
    admin = settings.admin_token or state.get("ADMIN_TOKEN") or secrets.token_hex(16)
    user = settings.automation_user_id or state.get("PREPR_AUTOMATION_USER_ID") or str(uuid.uuid4())
    setup = {"PREPR_WEBHOOK_SECRETS": secret, "PREPR_ACCESS_TOKEN": token, "PREPR_API_URL": sandbox,
             "PREPR_TRACKING_URL": sandbox, "PREPR_CUSTOMERS_URL": sandbox, "PREPR_AUTOMATION_USER_ID": user,
             "ADMIN_TOKEN": admin,
             "PORT": str(port), "RULES_PATH": str(rules), "DATA_DIR": str(data_dir)}
    if settings.broker_url:
        setup["REDIS_URL"] = settings.broker_url
    write_dev_state({"DATA_DIR": str(data_dir)}, setup)
    env = {**os.environ, **setup, "CELERY_BROKER_URL": url}
    children.start([sys.executable, "-m", "sandbox", "--port", str(sandbox_port), "--data-dir",
                    str(data_dir / "sandbox"), "--api", "content_items", "--user-id", user,
                    "--webhook-url", f"{web}/webhooks/prepr",
                    "--webhook-secret", secret.split(",")[0]], name="sandbox", env=env)
    children.start([sys.executable, "-m", "gunicorn", "webhooks:create_app()", "--bind", f"127.0.0.1:{port}",
                    "--worker-class", "gevent", "--workers", "1", "--keep-alive", "5",
                    "--log-level", "warning"], name="web", env=env)
    worker = children.start([sys.executable, "-m", "celery", "-A", "tasks", "worker", "-Q", "celery,bulk",
                             "-n", WORKER_NAME, "-P", "threads", "-c", str(workers), "--loglevel", "INFO", "--without-gossip",
                             "--without-mingle"],
                            name="worker", env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    ready = threading.Event()
    threading.Thread(target=_forward, args=(worker.stdout, ready), daemon=True).start()
    try:
        _wait(lambda: _answers(f"{sandbox}/health"), children, stop, f"{sandbox}/health")
        _wait(lambda: _answers(f"{web}/health"), children, stop, f"{web}/health")
        _wait(lambda: ready.is_set(), children, stop, "the worker", timeout=60)
        event_file = Path("examples/content_item.changed.json")
        event_file = event_file if event_file.is_file() else examples() / "examples" / "content_item.changed.json"
        _say(tour(web, sandbox, token, admin, secret.split(",")[0], url, data_dir, str(rules), workers, event_file))
        _wait(lambda: False, children, stop, "", timeout=None)
    except Stopping as exc:
        if str(exc):
            click.echo(f"error: {exc}; stopping everything", err=True)
            return 1
    return 0


def _previous(data_dir: Path) -> dict[str, str]:
    """The set-up an earlier start recorded, so restarts keep the same token, secret and data."""
    try:
        return json.loads(dev_state_path({"DATA_DIR": str(data_dir)}).read_text())
    except (OSError, ValueError):
        return {}


def _answers(url: str) -> bool:
    try:
        requests.get(url, timeout=1)
        return True
    except requests.RequestException:
        return False


def _wait(done, children: Supervisor, stop: list[int], what: str, timeout: float | None = 30) -> None:
    """Until done(); raises Stopping on a signal (no message) or when a child ends (with one)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while not done():
        if stop:
            raise Stopping("")
        ended = children.exited()
        if ended is not None:
            raise Stopping(f"{ended.name} exited with status {ended.returncode}")  # type: ignore[attr-defined]
        if deadline is not None and time.monotonic() > deadline:
            raise Stopping(f"{what} did not answer within {timeout:.0f}s")
        time.sleep(0.2)
