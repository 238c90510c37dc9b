"""The rendering budget (SPEC §8): a template's output is bounded in size and its render in time.

A sandbox stops a template reading what it must not; it does not stop `'x'|center(10**8)` from
asking for 100 MB, `range(100000)` loops nested twice from spinning for hours, or a `join` from
asking for 10 GB. Every way a template can make text is checked here BEFORE the text exists:
filters and string methods that widen or repeat are measured by what they would build; loops,
calls and attribute reads check a deadline; every piece of output (also into `{% set %}` blocks
and macros) is counted. An exceeded budget raises RenderBudgetError, which the renderer turns into
a rule error in the trace: `template output exceeds 102400 bytes`, `template took longer than 1.0 s`.
"""
from __future__ import annotations

import contextlib
import time
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Iterable, Iterator

MAX_RENDERED_BYTES = 102_400  # the default; settings.MAX_RENDERED_BYTES replaces it per process
RENDER_SECONDS = 1.0
MADE_FACTOR = 4  # text made in all (buffers, macros, discarded `set` blocks) may be this many outputs
MAX_PIECES = 1_000_000  # output appends per render: bounds a loop's list of small pieces


class RenderBudgetError(Exception):
    """The template asked for more than the budget; str() is the rule error."""


@dataclass
class Budget:
    max_bytes: int
    seconds: float
    deadline: float
    made: int = 0
    pieces: int = 0


_LIMITS = {"max_bytes": MAX_RENDERED_BYTES, "seconds": RENDER_SECONDS}
_CURRENT: ContextVar[Budget | None] = ContextVar("render_budget", default=None)


def configure(max_bytes: int | None = None, seconds: float | None = None) -> None:
    """Set the process's limits (from settings, at start): every later render uses them."""
    if max_bytes is not None:
        _LIMITS["max_bytes"] = int(max_bytes)
    if seconds is not None:
        _LIMITS["seconds"] = float(seconds)


def max_bytes() -> int:
    current = _CURRENT.get()
    return current.max_bytes if current is not None else int(_LIMITS["max_bytes"])


@contextlib.contextmanager
def rendering() -> Iterator[Budget]:
    """One budget for the renders inside (one action's value tree); nested calls share it."""
    current = _CURRENT.get()
    if current is not None:
        yield current
        return
    seconds = float(_LIMITS["seconds"])
    budget = Budget(int(_LIMITS["max_bytes"]), seconds, time.monotonic() + seconds)
    token = _CURRENT.set(budget)
    try:
        yield budget
    finally:
        _CURRENT.reset(token)


def tick() -> None:
    """The deadline check, called from every loop step, call, attribute read and output piece."""
    current = _CURRENT.get()
    if current is not None and time.monotonic() > current.deadline:
        raise RenderBudgetError(f"template took longer than {current.seconds} s")


def exceeded(detail: str) -> RenderBudgetError:
    return RenderBudgetError(f"template output exceeds {max_bytes()} bytes ({detail})")


def would_build(size: int, what: str) -> None:
    """Refuse before allocating: `what` would build `size` characters."""
    if size > max_bytes():
        raise exceeded(f"{what} would build {size:,} characters")


def emit(size: int) -> None:
    """Count one piece of output (any buffer); the whole text made is bounded too."""
    tick()
    current = _CURRENT.get()
    if current is None:
        return
    current.made += size
    current.pieces += 1
    if current.made > MADE_FACTOR * current.max_bytes:
        raise exceeded(f"{current.made:,} characters of text made in all")
    if current.pieces > MAX_PIECES:
        raise exceeded(f"over {MAX_PIECES:,} pieces of output")


def weight(value: Any, limit: int | None = None) -> int:
    """An estimate of len(str(value)) that stops early past `limit` — never builds the text.

    A list of 100,000 references to one 100,000-character string is cheap to hold and 10 GB to
    print; this walk finds that after a few steps."""
    limit = max_bytes() if limit is None else limit
    if isinstance(value, str):
        return len(value)  # printed as is; inside a container it gains quotes (below)
    total, stack = 0, [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            total += len(item) + 2
        elif isinstance(item, (bytes, bytearray)):
            total += 4 * len(item) + 3
        elif isinstance(item, bool) or item is None:
            total += 5
        elif isinstance(item, int):
            total += item.bit_length() * 3 // 10 + 2
        elif isinstance(item, float):
            total += 24
        elif isinstance(item, dict):
            total += 2 + 4 * len(item)
            if total <= limit:
                stack.extend(item.keys())
                stack.extend(item.values())
        elif isinstance(item, (list, tuple, set, frozenset)):
            total += 2 + 2 * len(item)
            if total <= limit:
                stack.extend(item)
        else:
            total += 64  # ranges, Undefined, namespaces, generators: short reprs
        if total > limit:
            return total
    return total


def text_of(value: Any, what: str) -> str:
    """str(value), refused when that text would exceed the budget."""
    if isinstance(value, str):
        return value
    would_build(weight(value), what)
    return str(value)


def stepping(iterable: Iterable[Any]) -> Iterator[Any]:
    """Iterate with a deadline check per item: the hook of every `{% for %}` loop."""
    for item in iterable:
        tick()
        yield item
