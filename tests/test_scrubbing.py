"""Every configured secret (access token, webhook secrets, ADMIN_TOKEN) is scrubbed from what is
kept and logged, in whatever form it takes there: as is, JSON-escaped, percent-encoded."""
from __future__ import annotations

import io
import json
import logging

import redis

from prepr_automation.observability import FILTERED, scrub_logs, secret_values
from prepr_automation.settings import Settings
from tasks.deadletters import DeadLetter, DeadLetters

SETTINGS = Settings(webhook_secrets=("whsec-one", 'whsec "two"\\é'), access_token="tok-abc-123",
                    admin_token="admin/tok+en")
RAW = ["whsec-one", 'whsec "two"\\é', "tok-abc-123", "admin/tok+en"]
FORMS = RAW + [json.dumps(RAW[1])[1:-1], "admin%2Ftok%2Ben"]


def test_dead_letter_keeps_no_secret_in_any_form(redis_client: redis.Redis) -> None:
    echoed = json.dumps({"error": "bad request", "echo": {"secrets": RAW, "url": "/x?token=admin%2Ftok%2Ben"}})
    letter = DeadLetter(event_id="e1", reason="Prepr answered 400", task="tasks.process_event",
                        args=[{"id": "e1", "event": "content_item.changed", "payload": {"token": "keep me", RAW[0]: 1}}],
                        request={"method": "PUT", "path": "/publications/p1"},
                        response={"status": 400, "body": echoed}, error=f"boom {RAW[2]}")
    letters = DeadLetters(redis_client, secret_values(SETTINGS))
    letter_id = letters.add(letter, report=False)
    stored = redis_client.get(f"pa:dead:{letter_id}").decode()
    for form in FORMS:
        assert form not in stored, form
    kept = letters.get(letter_id)
    assert kept is not None and kept.args[0]["payload"]["token"] == "keep me"  # a field named like a secret stays
    assert FILTERED in kept.response["body"] and kept.error == f"boom {FILTERED}"


def test_log_lines_and_tracebacks_are_scrubbed() -> None:
    logger = logging.getLogger("scrub-test")
    logger.propagate = False
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    logger.addHandler(handler)
    scrub_logs(secret_values(SETTINGS), logger)
    logger.warning("token %s and %s", RAW[2], json.dumps(RAW[1]))
    try:
        raise RuntimeError(f"failed with {RAW[3]}")
    except RuntimeError:
        logger.exception("call failed")
    text = out.getvalue()
    for form in FORMS:
        assert form not in text, form
    assert text.count(FILTERED) >= 3 and "RuntimeError" in text
