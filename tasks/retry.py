"""Retry policy for failed Prepr calls: exponential backoff with jitter, honouring Retry-After.

The countdown is capped below the broker's visibility timeout: a message held longer than
that by a waiting worker would be re-delivered to another worker as if the first had died.
"""
from __future__ import annotations

import random
from typing import Callable


def countdown(attempt: int, retry_after: float | None, *, base: float = 2.0, cap: float = 120.0,
              ceiling: float = 270.0, rand: Callable[[], float] = random.random) -> float:
    """Seconds before retry number `attempt` (0-based): "equal jitter", at least Retry-After."""
    exp = min(cap, base * (2 ** attempt))
    delay = exp / 2 + rand() * exp / 2
    if retry_after is not None:
        delay = max(delay, retry_after + rand() * 0.5)
    return min(delay, ceiling)
