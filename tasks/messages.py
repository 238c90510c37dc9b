"""The queue contract: the task message that the door and backfill put on the broker, and the one
Redis script that marks an event seen, pushes its message and records its receipt together.

Importable without Celery: the web process never loads the Celery app or the task code. The
message is Celery's protocol-2 task message in the form kombu's Redis transport stores it;
tests/tasks/test_messages.py compares it field by field with what `send_task` puts on the list,
so a Celery or kombu upgrade that changes the form fails there. The headers are serialised once
per queue with holes for what varies (task id, argsrepr, delivery tag), because dumping them per
request cost a quarter of the receiver's own CPU time.
"""
from __future__ import annotations

import base64
import json
import os
import socket
import uuid
from typing import Any, Literal

import redis

from prepr_automation.store import seen_key, trace_key

TASK_NAME = "tasks.process_event"
EVENTS_QUEUE = "celery"
BULK_QUEUE = "bulk"

# KEYS: seen, trace, queue[, member set, cursor]
# ARGV: token, seen ttl, message|"", record, trace ttl, member|"" (no set), ttl of the member set and cursor
# The seen mark holds the attempt's token, so a caller whose earlier attempt landed but whose
# answer was lost (a timeout) recognises it on its retry instead of calling it a duplicate.
# Only what correctness needs is here: the mark, the message and the receipt (`received`, which
# also orders coalesced events). The console's history of the event (its envelope, the time
# index, the counts) follows outside this call (prepr_automation.recorder), so it never costs
# the answer. A duplicate is counted on a trace that is still kept, never on one trimmed away.
_SCRIPT = """
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then
  if redis.call('GET', KEYS[1]) == ARGV[1] then return 2 end
  if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('HINCRBY', KEYS[2], 'duplicates', 1) end
  return 0
end
if ARGV[3] ~= '' then redis.call('LPUSH', KEYS[3], ARGV[3]) end
redis.call('HSET', KEYS[2], 'received', ARGV[4])
redis.call('EXPIRE', KEYS[2], ARGV[5])
if ARGV[6] ~= '' then
  redis.call('SADD', KEYS[4], ARGV[6])
  for i = 4, #KEYS do redis.call('EXPIRE', KEYS[i], ARGV[7]) end
end
return 1
"""

Landed = Literal["new", "again", "duplicate"]  # "again": this token's own earlier attempt had landed
_LANDED: dict[int, Landed] = {1: "new", 2: "again", 0: "duplicate"}
_EMBED = b',{},{"callbacks":null,"errbacks":null,"chain":null,"chord":null}]'
_ORIGIN = f"gen{os.getpid()}@{socket.gethostname()}"  # as celery.utils.nodenames.anon_nodename
_HOLE = "\x00"


def _template(queue: str) -> tuple[bytes, ...]:
    """The message as JSON with its six variable parts (each a JSON string) cut out."""
    text = json.dumps({
        "body": _HOLE,
        "content-encoding": "utf-8",
        "content-type": "application/json",
        "headers": {
            "lang": "py", "task": TASK_NAME, "id": _HOLE, "shadow": None, "eta": None,
            "expires": None, "group": None, "group_index": None, "retries": 0,
            "timelimit": [None, None], "root_id": _HOLE, "parent_id": None,
            "argsrepr": _HOLE, "kwargsrepr": "{}", "origin": _ORIGIN,
            "ignore_result": None, "replaced_task_nesting": 0, "stamped_headers": None, "stamps": {},
        },
        "properties": {
            "correlation_id": _HOLE, "reply_to": "", "delivery_mode": 2,
            "delivery_info": {"exchange": "", "routing_key": queue}, "priority": 0,
            "body_encoding": "base64", "delivery_tag": _HOLE,
        },
    }, separators=(",", ":"))
    parts = tuple(part.encode() for part in text.split(json.dumps(_HOLE)))
    assert len(parts) == 7, "the template must have exactly six holes"
    return parts


_TEMPLATES = {queue: _template(queue) for queue in (EVENTS_QUEUE, BULK_QUEUE)}


def argsrepr(envelope: dict[str, Any]) -> str:
    """What Flower and `celery events` show as the task's arguments: the event's id and name."""
    return "[{'id': %r, 'event': %r, ...}]" % (envelope.get("id"), envelope.get("event"))


def task_message(envelope: dict[str, Any], queue: str = EVENTS_QUEUE, task_id: str | None = None,
                 raw_envelope: bytes | None = None) -> bytes:
    """`tasks.process_event(envelope)` exactly as `send_task` puts it on kombu's Redis transport.

    `raw_envelope`, when given, is the envelope's JSON already serialised (the door's raw body):
    embedded as it is instead of serialising the parsed dict a second time.
    """
    if raw_envelope is None:
        raw_envelope = json.dumps(envelope, separators=(",", ":")).encode()
    body = json.dumps(base64.b64encode(b"[[" + raw_envelope + b"]" + _EMBED).decode()).encode()
    tid = json.dumps(task_id or str(uuid.uuid4())).encode()
    head, after_body, after_id, after_root, after_repr, after_corr, tail = _TEMPLATES.get(queue) or _template(queue)
    return b"".join((head, body, after_body, tid, after_id, tid, after_root, json.dumps(argsrepr(envelope)).encode(),
                     after_repr, tid, after_corr, json.dumps(str(uuid.uuid4())).encode(), tail))


class Enqueue:
    """Mark seen + push the message + write the receive record, as one Redis script call.

    Shared by the door (an event id seen once; its history written next by the recorder) and
    backfill (which also adds the item to its run's set, so a resumed run skips it)."""

    def __init__(self, client: redis.Redis) -> None:
        self._script = client.register_script(_SCRIPT)

    def __call__(self, event_id: str, token: str, message: bytes, record: str, *, queue: str, seen_ttl: int,
                 trace_ttl: int, member: str | None = None, member_keys: tuple[str, ...] = (),
                 member_ttl: int = 0) -> Landed:
        keys = [seen_key(event_id), trace_key(event_id), queue, *member_keys]
        args: list[Any] = [token, seen_ttl, message, record, trace_ttl, member or "", member_ttl]
        return _LANDED[int(self._script(keys=keys, args=args))]
