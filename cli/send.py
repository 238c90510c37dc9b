"""`prepr-automation send EVENT.json`: sign a webhook body and post it to the receiver, as Prepr does.

Why a command and not a curl line: the signature is an HMAC over the exact bytes sent, so
anything that re-serialises the JSON (an editor, `jq`, a shell heredoc) breaks it. This reads
the file's bytes once, signs those bytes and posts those bytes. The key and the port are found
as every command finds its set-up (the environment, else what `prepr-automation dev` recorded
in the folder), so on a dev machine `send examples/content_item.changed.json` just works.

Exit status: 0 when the receiver answered 2xx, 1 for any other answer or when it could not be
reached, 2 when nothing was sent (no such file, no signing key) — as for every setup error.
"""
from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path
from urllib.parse import urlparse

import click
import requests

from webhooks.signature import sign

from prepr_automation.settings import Settings, dev_state_path, load_settings

RECEIVER_PATH = "/webhooks/prepr"


def _fail(message: str, code: int) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def read_body(source: str) -> bytes:
    """The exact bytes to send: a file, or standard input for `-`."""
    if source == "-":
        return sys.stdin.buffer.read()
    path = Path(source)
    if not path.is_file():
        _fail(f"{source}: no such file", 2)
    return path.read_bytes()


def fresh_delivery(body: bytes, source: str) -> bytes:
    """The same event under a new delivery id (the file's id with a random suffix), so the receiver
    takes it as new however often it is sent; the new bytes are what is signed and sent."""
    try:
        envelope = json.loads(body)
    except ValueError as exc:
        _fail(f"{source} is not JSON ({exc}); --new-id needs the event's envelope", 2)
    if not isinstance(envelope, dict):
        _fail(f"{source} is not a Prepr event (a JSON object with an id); --new-id needs one", 2)
    envelope["id"] = f"{str(envelope.get('id') or 'event')[:150]}-{uuid.uuid4().hex[:12]}"
    return json.dumps(envelope).encode()


def signing_key(settings: Settings, given: str | None) -> str:
    """--secret, else the first of PREPR_WEBHOOK_SECRETS (the key Prepr signs with; dev's if unset)."""
    if given:
        return given
    if settings.webhook_secrets:
        return settings.webhook_secrets[0]
    _fail("no signing key: pass --secret, set PREPR_WEBHOOK_SECRETS, "
          f"or run `prepr-automation dev` once in this folder (it writes {dev_state_path({'DATA_DIR': settings.data_dir})})", 2)
    raise AssertionError("unreachable")


def receiver_url(settings: Settings, given: str | None) -> str:
    """--url as given; a bare host (no path) gets the receiver's path, so `--url http://host` works."""
    if not given:
        return f"http://127.0.0.1:{settings.port}{RECEIVER_PATH}"
    if urlparse(given).path in ("", "/"):
        return given.rstrip("/") + RECEIVER_PATH
    return given


def _describe(response: requests.Response) -> str:
    try:
        return json.dumps(response.json(), indent=2)
    except ValueError:
        return response.text.strip()


@click.command("send")
@click.argument("event_file", metavar="EVENT.json")
@click.option("--url", default=None, help="the receiver (default: http://127.0.0.1:$PORT/webhooks/prepr)")
@click.option("--secret", default=None,
              help="signing key (default: first of PREPR_WEBHOOK_SECRETS, else the key `dev` generated)")
@click.option("--timeout", default=10.0, show_default=True, help="seconds to wait for the answer")
@click.option("--new-id", is_flag=True,
              help="send it as a new delivery: a fresh `id` each time (else a resend is a duplicate)")
def send(event_file: str, url: str | None, secret: str | None, timeout: float, new_id: bool) -> None:
    """Sign EVENT.json (`-`: standard input) and post it as Prepr would; print the answer."""
    settings = load_settings(cli=True)
    body = read_body(event_file)
    if new_id:
        body = fresh_delivery(body, event_file)
    key = signing_key(settings, secret)
    target = receiver_url(settings, url)
    headers = {"Content-Type": "application/json", "Prepr-Signature": sign(body, key),
               "User-Agent": "prepr-automation-send"}
    try:
        response = requests.post(target, data=body, headers=headers, timeout=timeout)
    except requests.ConnectionError:
        _fail(f"cannot reach {target} (connection refused or host unknown); is the web process running?", 1)
    except requests.Timeout:
        _fail(f"{target} did not answer within {timeout:g}s", 1)
    except requests.RequestException as exc:
        _fail(f"{target}: {exc}", 1)
    click.echo(f"{response.status_code} {response.reason}")
    answer = _describe(response)
    if answer:
        click.echo(answer)
    sys.exit(0 if 200 <= response.status_code < 300 else 1)
