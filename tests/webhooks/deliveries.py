"""Real deliveries made recent: the captured ones are from 2022, older than the dedupe window."""
from __future__ import annotations

import json
import re
import time


def recent(body: bytes, now: int | None = None) -> bytes:
    """The same bytes but for the envelope's integer created_on, set to now (so it is not stale).

    Only the first `"created_on":N` is rewritten, and only when N is the envelope's own value:
    everything else stays exactly as Prepr sent it."""
    created = json.loads(body).get("created_on")
    if not isinstance(created, int) or isinstance(created, bool):
        return body
    pattern = re.compile(rb'("created_on"\s*:\s*)' + str(created).encode() + rb"\b")
    return pattern.sub(rb"\g<1>" + str(now or int(time.time())).encode(), body, count=1)
