"""`prepr-automation dev` (what `make run` runs): the whole service on one machine, zero set-up.

Starts the embedded Redis under DATA_DIR, the sandbox (a local Prepr with demo content, whose
webhooks are signed and sent to our web), the web (gunicorn, as in the Procfile) and a worker,
all pointed at each other; then prints a short tour. Ctrl-C stops everything. Generated
secrets and all data live in DATA_DIR, so a second start picks up where the first stopped.
"""
from __future__ import annotations

import json
import os
import secrets
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import click
import requests

from webhooks.signature import sign

from prepr_automation import store
from prepr_automation.settings import ConfigError, load_settings

EXAMPLE_EVENT = Path(__file__).resolve().parent.parent / "examples" / "content_item.changed.json"
INTRO = "Tonight: a football derby at Wembley, then tennis from Wimbledon and the Premier League table."


def _kept(data_dir: Path, name: str, make=lambda: secrets.token_hex(16)) -> str:
    """A generated value kept in DATA_DIR, so restarts reuse it."""
    path = data_dir / name
    if not path.exists():
        path.write_text(make())
        path.chmod(0o600)
    return path.read_text().strip()


def _bin(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def _rel(path: str | Path) -> str:
    """A path as short as it can be written from the current folder."""
    try:
        return shlex.quote(str(Path(path).resolve().relative_to(Path.cwd())))
    except ValueError:
        return shlex.quote(str(path))


def _cmd() -> str:
    return _rel(_bin("prepr-automation"))


def curl_line(url: str, event_file: Path, secret: str) -> str:
    signature = sign(event_file.read_bytes(), secret)
    return (f"curl -i -X POST {url}/webhooks/prepr -H 'Content-Type: application/json' "
            f"-H 'Prepr-Signature: {signature}' --data-binary @{_rel(event_file)}")


def _wait_up(url: str, children: list[subprocess.Popen], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(child.poll() is not None for child in children):
            raise click.ClickException(f"a process exited during start-up (waiting for {url})")
        try:
            requests.get(url, timeout=1)
            return
        except requests.RequestException:
            time.sleep(0.1)
    raise click.ClickException(f"{url} did not answer within {timeout:.0f}s")


@click.command("dev")
@click.option("--port", type=int, default=None, help="web port (default: PORT or 5000)")
@click.option("--sandbox-port", type=int, default=lambda: int(os.environ.get("SANDBOX_PORT", 8080)),
              show_default="8080", help="the sandbox's port (env SANDBOX_PORT)")
@click.option("--worker-concurrency", type=int, default=2, show_default=True)
def dev(port: int | None, sandbox_port: int, worker_concurrency: int) -> None:
    """Web + worker + sandbox with demo content, embedded Redis, the example rules."""
    settings = load_settings()
    if not Path(settings.rules_path).exists():
        raise ConfigError(f"RULES_PATH is malformed: {settings.rules_path} does not exist")
    data_dir = Path(settings.data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    url = store.broker_url(settings)
    port = port or settings.port
    web, sandbox = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{sandbox_port}"
    secret = os.environ.get("PREPR_WEBHOOK_SECRETS") or _kept(data_dir, "dev-webhook-secret")
    token = settings.access_token or _kept(data_dir, "dev-access-token", lambda: "sandbox-" + secrets.token_hex(16))
    admin = settings.admin_token or _kept(data_dir, "dev-admin-token")
    user = settings.automation_user_id or _kept(data_dir, "dev-automation-user", lambda: str(__import__("uuid").uuid4()))
    env = {**os.environ, "CELERY_BROKER_URL": url, "PREPR_WEBHOOK_SECRETS": secret, "DATA_DIR": str(data_dir),
           "PREPR_ACCESS_TOKEN": token, "PREPR_API_URL": sandbox, "PREPR_TRACKING_URL": sandbox,
           "PREPR_AUTOMATION_USER_ID": user, "ADMIN_TOKEN": admin,
           "RULES_PATH": str(Path(settings.rules_path).resolve())}
    children = [subprocess.Popen(
        [sys.executable, "-m", "sandbox", "--port", str(sandbox_port), "--data-dir", str(data_dir / "sandbox"),
         "--user-id", user, "--webhook-url", f"{web}/webhooks/prepr", "--webhook-secret", secret.split(",")[0]],
        env=env)]
    children.append(subprocess.Popen(
        [_bin("gunicorn"), "webhooks:create_app()", "--preload", "--bind", f"127.0.0.1:{port}",
         "--worker-class", "gthread", "--workers", "1", "--threads", "8", "--log-level", "warning"], env=env))
    children.append(subprocess.Popen(
        [_bin("celery"), "-A", "tasks", "worker", "-Q", "celery,bulk", "-c", str(worker_concurrency),
         "--loglevel", "INFO", "--without-gossip", "--without-mingle"], env=env))
    try:
        _wait_up(f"{sandbox}/health", children)
        _wait_up(f"{web}/health", children)
        _tour(web, sandbox, token, admin, secret.split(",")[0], url, data_dir, env["RULES_PATH"])
    except click.ClickException:
        _stop(children)
        raise
    _wait(children)
    if not settings.broker_url:
        store.stop_embedded(str(data_dir))


def _demo_article(sandbox: str, token: str) -> tuple[str, str]:
    """An en-GB Article the example rules have not tagged yet, and an editor to act as."""
    auth = {"Authorization": f"Bearer {token}"}
    items = requests.get(f"{sandbox}/publications", params={"limit": 100}, headers=auth, timeout=5).json()["items"]
    persons = requests.get(f"{sandbox}/persons", headers=auth, timeout=5).json()["items"]
    articles = [i for i in items if (i.get("model") or {}).get("body") == "Article" and "en-GB" in (i.get("items") or {})]
    untagged = [i for i in articles if "sport" not in json.dumps(i["items"]["en-GB"].get("tags"))]
    return (untagged or articles)[0]["id"], persons[0]["id"]


def _tour(web: str, sandbox: str, token: str, admin: str, secret: str, broker: str, data_dir: Path,
          rules: str) -> None:
    item, editor = _demo_article(sandbox, token)
    cmd = _cmd()
    body = json.dumps({"items": {"en-GB": {"intro": {"body": INTRO}}}})
    auth = f"-H 'Authorization: Bearer {token}'"
    click.echo(f"""
prepr-automation is running
  web      {web}   (POST /webhooks/prepr, GET /health)
  console  {web}/console   sign in with the admin token {admin}
  sandbox  {sandbox}   (a local Prepr with demo content; token {token})
  worker   2 processes, rules from RULES_PATH; broker {broker}

Try it (in another terminal, from this folder):
  1. Change a demo article as an editor would; the sandbox sends Prepr's webhook to the web:
     curl -s -o /dev/null -X PUT {sandbox}/publications/{item} {auth} -H 'X-Sandbox-User: {editor}' -H 'Content-Type: application/json' -d '{body}'
  2. Watch the worker line "event … publication {item[:8]}…: done" below; then see the tags:
     curl -s '{sandbox}/publications/{item}?fields=items' {auth}
  3. What happened and why (id from the worker line):
     {cmd} trace EVENT_ID          or  curl -H 'Authorization: Bearer {admin}' {web}/events/EVENT_ID
  4. Dry-run the rules against the article, without writing:
     PREPR_API_URL={sandbox} PREPR_ACCESS_TOKEN={token} {cmd} explain {_event_file(data_dir, item)} --rules {_rel(rules)} --fetch
  5. Send a signed event yourself (a demo article's; send it twice: the second is a "duplicate"):
     {curl_line(web, EXAMPLE_EVENT, secret)}

Edit the rules under rules/ (check them with `{cmd} validate`); web and worker pick up changes.
Ctrl-C stops everything.
""")


def _event_file(data_dir: Path, item: str) -> str:
    """A delivery for the demo article, written where the tour can point at it."""
    path = data_dir / "demo-event.json"
    path.write_text(json.dumps({"id": f"demo-{int(time.time())}", "event": "content_item.changed",
                                "created_on": int(time.time()), "payload": {"id": item}}, indent=2))
    return _rel(path)


def _stop(children: list[subprocess.Popen]) -> None:
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 20
    for child in children:
        try:
            child.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()


def _wait(children: list[subprocess.Popen]) -> None:
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    while not stopping and all(child.poll() is None for child in children):
        time.sleep(0.2)
    _stop(children)
    click.echo("stopped.")
