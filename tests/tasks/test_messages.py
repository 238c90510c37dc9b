"""The queue contract (tasks.messages) pinned against Celery itself: the message the door and
backfill build is, field by field, what the project's Celery app's `send_task` puts on the Redis
list; and the module imports without Celery."""
from __future__ import annotations

import base64
import json
import os
import subprocess
import sys

import pytest
import redis

from tasks.messages import BULK_QUEUE, EVENTS_QUEUE, TASK_NAME, argsrepr, task_message
from tests.conftest import ROOT

ENVELOPE = {"id": "evt-é-1", "event": "content_item.changed", "created_on": 1, "payload": {"id": "p1", "n": [1.5, None]}}
PER_MESSAGE = {("headers", "id"), ("headers", "root_id"), ("properties", "correlation_id"),
               ("properties", "delivery_tag"),  # fresh uuids in each message
               ("properties", "reply_to"),  # the sender's per-thread oid; no results are kept
               ("headers", "origin"),  # gen<pid>@<host> of the sending process
               ("headers", "argsrepr")}  # ours names the event (Celery's: a repr of the whole envelope)


def _flat(message: dict, prefix: tuple = ()) -> dict[tuple, object]:
    out: dict[tuple, object] = {}
    for key, value in message.items():
        if isinstance(value, dict) and value and prefix + (key,) not in (("headers", "stamps"),):
            out.update(_flat(value, prefix + (key,)))
        else:
            out[prefix + (key,)] = value
    return out


@pytest.mark.parametrize("queue", [EVENTS_QUEUE, BULK_QUEUE])
def test_message_is_field_by_field_what_send_task_puts_on_the_list(queue: str, redis_url: str,
                                                                    redis_client: redis.Redis) -> None:
    code = ("import json, sys; from tasks.celery_app import app; "
            "app.send_task(sys.argv[1], args=[json.loads(sys.argv[2])], queue=sys.argv[3])")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SENTRY", "REDIS_URL"))}  # Celery alone
    subprocess.run([sys.executable, "-c", code, TASK_NAME, json.dumps(ENVELOPE), queue], cwd=ROOT, check=True,
                   env={**env, "CELERY_BROKER_URL": redis_url}, timeout=60)
    theirs = json.loads(redis_client.lpop(queue))
    ours = json.loads(task_message(ENVELOPE, queue))
    flat_theirs, flat_ours = _flat(theirs), _flat(ours)
    assert flat_ours.keys() == flat_theirs.keys()
    for key in flat_theirs:
        if key in PER_MESSAGE:
            assert type(flat_ours[key]) is type(flat_theirs[key]), key
        elif key == ("body",):
            assert json.loads(base64.b64decode(flat_ours[key])) == json.loads(base64.b64decode(flat_theirs[key]))
        else:
            assert flat_ours[key] == flat_theirs[key], key
    assert ours["headers"]["origin"].split("@")[1] == theirs["headers"]["origin"].split("@")[1]
    headers, properties = ours["headers"], ours["properties"]
    assert headers["id"] == headers["root_id"] == properties["correlation_id"]


def test_argsrepr_shows_the_event_id() -> None:
    headers = json.loads(task_message(ENVELOPE))["headers"]
    assert "'evt-é-1'" in headers["argsrepr"] and "content_item.changed" in headers["argsrepr"]


def test_the_contract_imports_without_celery() -> None:
    code = ("import sys, tasks.messages, tasks.backfill, webhooks; "
            "print(sorted(m for m in sys.modules if m == 'celery' or m.startswith('tasks.celery')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
