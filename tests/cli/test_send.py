"""`prepr-automation send` against the real web (gunicorn) and a real Redis broker."""
from __future__ import annotations

import base64
import json
import os
import subprocess
from pathlib import Path

import redis

from tests.conftest import BIN, ROOT, Processes, free_port
from tests.webhooks.test_processes import KEY, start_web
from webhooks.intake import QUEUE

EVENT = ROOT / "examples" / "content_item.changed.json"


def run(*args: str, stdin: bytes | None = None, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in ("PREPR_WEBHOOK_SECRETS", "PORT", "DATA_DIR")}
    return subprocess.run([str(BIN / "prepr-automation"), "send", *args], env={**clean, **env}, input=stdin,
                          capture_output=True, timeout=60, cwd=str(ROOT))


def queued_envelopes(client: redis.Redis) -> list[dict]:
    """The envelopes on the broker, decoded from kombu's message bodies."""
    out = []
    for raw in client.lrange(QUEUE, 0, -1):
        body = json.loads(base64.b64decode(json.loads(raw)["body"]))
        out.append(body[0][0])
    return out


def test_signed_event_is_accepted_and_on_the_broker(processes: Processes, redis_url: str,
                                                   redis_client: redis.Redis) -> None:
    url = start_web(processes, redis_url)
    done = run(str(EVENT), "--url", url + "/webhooks/prepr", "--secret", KEY)
    assert done.returncode == 0, done.stderr
    out = done.stdout.decode()
    assert out.startswith("202 ")
    answer = json.loads(out.split("\n", 1)[1])
    sent = json.loads(EVENT.read_bytes())
    assert answer == {"status": "queued", "event_id": sent["id"]}
    assert queued_envelopes(redis_client) == [sent]


def test_wrong_secret_shows_the_401_and_exits_1(processes: Processes, redis_url: str,
                                               redis_client: redis.Redis) -> None:
    url = start_web(processes, redis_url)
    done = run(str(EVENT), "--url", url, "--secret", "not-the-key")  # a bare host gets the receiver's path
    assert done.returncode == 1
    out = done.stdout.decode()
    assert out.startswith("401 ")
    assert "invalid Prepr-Signature" in out
    assert redis_client.llen(QUEUE) == 0


def test_defaults_port_and_first_configured_key(processes: Processes, redis_url: str,
                                                redis_client: redis.Redis) -> None:
    url = start_web(processes, redis_url)
    port = url.rsplit(":", 1)[1]
    done = run(str(EVENT), PORT=port, PREPR_WEBHOOK_SECRETS=f"{KEY},an-older-key")
    assert done.returncode == 0, done.stderr
    assert redis_client.llen(QUEUE) == 1


def test_stdin_and_the_set_up_dev_recorded(processes: Processes, redis_url: str, redis_client: redis.Redis,
                                          tmp_path: Path) -> None:
    """In a folder `dev` set up, the key and the port come from DATA_DIR/dev.json: no flag, no export."""
    url = start_web(processes, redis_url)
    (tmp_path / "dev.json").write_text(json.dumps({"PREPR_WEBHOOK_SECRETS": KEY, "PORT": url.rsplit(":", 1)[1]}))
    body = b'{"id": "from-stdin", "event": "content_item.changed", "created_on": 1, "payload": {"id": "x"}}'
    done = run("-", stdin=body, DATA_DIR=str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert [e["id"] for e in queued_envelopes(redis_client)] == ["from-stdin"]
    overridden = run("-", stdin=body, DATA_DIR=str(tmp_path), PREPR_WEBHOOK_SECRETS="another-key")
    assert overridden.returncode == 1 and overridden.stdout.decode().startswith("401 ")  # the environment wins


def test_setup_errors_are_one_line(tmp_path: Path) -> None:
    missing = run(str(tmp_path / "nope.json"), "--secret", "k")
    assert missing.returncode == 2
    assert missing.stderr.decode().strip() == f"error: {tmp_path / 'nope.json'}: no such file"

    no_key = run(str(EVENT), DATA_DIR=str(tmp_path))
    assert no_key.returncode == 2
    assert len(no_key.stderr.decode().strip().splitlines()) == 1
    assert "no signing key" in no_key.stderr.decode()

    refused = run(str(EVENT), "--secret", "k", "--url", f"http://127.0.0.1:{free_port()}/webhooks/prepr")
    assert refused.returncode == 1
    lines = refused.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot reach") and not refused.stdout
