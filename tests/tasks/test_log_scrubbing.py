"""The worker's log lines never carry a configured secret, even when a delivery carries one: an
event id made of the access token and a dead letter whose Prepr answer echoes the webhook secret
and ADMIN_TOKEN are logged and kept with the secrets replaced."""
from __future__ import annotations

import json
import time
from pathlib import Path

from tests.tasks.conftest import Service, find_item
from tests.tasks.test_worker import FOOTBALL

WEBHOOK_SECRET, ADMIN = "whsec-log-test-0123", "admin-log-test-4567"


def test_worker_logs_and_dead_letters_hold_no_secret(service: Service) -> None:
    service.rules(FOOTBALL)
    worker = service.start_worker(TASK_MAX_RETRIES="0", PREPR_WEBHOOK_SECRETS=WEBHOOK_SECRET, ADMIN_TOKEN=ADMIN)
    item_id = find_item(service.sandbox, "Late winner")["id"]
    service.sandbox.fault(f"/publications/{item_id}", method="PUT", status=400, times=None,
                          body={"error": f"echo {WEBHOOK_SECRET} {json.dumps(ADMIN)} {service.sandbox.token}"})
    event_id = f"evt-{service.sandbox.token}"
    envelope = {"id": event_id, "event": "content_item.changed", "created_on": int(time.time()),
                "payload": {"id": item_id}, "performed_by": {"id": "editor-1"}}
    assert service.intake.accept(envelope, "queued") == "queued"
    trace = service.wait(event_id, timeout=60)
    assert trace["run"]["outcome"].startswith("dead-lettered"), trace["run"]
    time.sleep(0.5)
    log = Path(worker.log_path).read_text()  # type: ignore[attr-defined]
    assert "evt-[Filtered]" in log  # the event was logged, its id scrubbed
    stored = b" ".join(service.redis.get(key) or b"" for key in service.redis.keys("pa:dead:*"))
    for secret in (service.sandbox.token, WEBHOOK_SECRET, ADMIN):
        assert secret not in log, secret
        assert secret.encode() not in stored, secret
    assert b"[Filtered]" in stored
