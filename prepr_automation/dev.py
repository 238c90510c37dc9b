"""`prepr-automation dev`: the whole service on one machine with zero configuration.

Starts the embedded Redis under DATA_DIR, then the web (gunicorn, as in the Procfile) and a
worker as child processes, all pointed at the same store; Ctrl-C stops everything. The dev
signing secret is generated once and kept in DATA_DIR so a second start reuses it.
"""
from __future__ import annotations

import os
import secrets
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import click

from . import store
from .settings import load_settings
from webhooks.signature import sign

EXAMPLE_EVENT = Path(__file__).resolve().parent.parent / "examples" / "content_item.changed.json"


def _dev_secret(data_dir: Path) -> str:
    path = data_dir / "dev-webhook-secret"
    if not path.exists():
        path.write_text(secrets.token_hex(16))
        path.chmod(0o600)
    return path.read_text().strip()


def _bin(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def curl_line(url: str, event_file: Path, secret: str) -> str:
    signature = sign(event_file.read_bytes(), secret)
    return (f"curl -i -X POST {url}/webhooks/prepr -H 'Content-Type: application/json' "
            f"-H 'Prepr-Signature: {signature}' --data-binary @{shlex.quote(str(event_file))}")


@click.command("dev")
@click.option("--port", type=int, default=None, help="web port (default: PORT or 5000)")
@click.option("--worker-concurrency", type=int, default=2, show_default=True)
def dev(port: int | None, worker_concurrency: int) -> None:
    """Web + worker on the embedded Redis, no configuration needed."""
    settings = load_settings()
    data_dir = Path(settings.data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    url = store.broker_url(settings)
    secret = os.environ.get("PREPR_WEBHOOK_SECRETS") or _dev_secret(data_dir)
    port = port or settings.port
    env = {**os.environ, "CELERY_BROKER_URL": url, "PREPR_WEBHOOK_SECRETS": secret,
           "DATA_DIR": str(data_dir), "PREPR_ACCESS_TOKEN": settings.access_token or "dev-token"}
    children = [
        subprocess.Popen([_bin("gunicorn"), "webhooks:create_app()", "--preload", "--bind", f"127.0.0.1:{port}",
                          "--worker-class", "gthread", "--workers", "1", "--threads", "8",
                          "--log-level", "warning"], env=env),
        subprocess.Popen([_bin("celery"), "-A", "tasks", "worker", "-Q", "celery,bulk", "-c",
                          str(worker_concurrency), "--loglevel", "INFO", "--without-gossip",
                          "--without-mingle"], env=env),
    ]
    web = f"http://127.0.0.1:{port}"
    click.echo(f"\nprepr-automation is running: web {web}, broker {url}")
    click.echo(f"development signing secret: {secret}")
    click.echo("send a signed event:\n  " + curl_line(web, EXAMPLE_EVENT, secret))
    click.echo("Ctrl-C stops everything.\n")
    _wait(children)
    if not settings.broker_url:
        store.stop_embedded(str(data_dir))


def _wait(children: list[subprocess.Popen]) -> None:
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    while not stopping and all(child.poll() is None for child in children):
        time.sleep(0.2)
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 20
    for child in children:
        try:
            child.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
    click.echo("stopped.")
