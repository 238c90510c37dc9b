"""No poison message: a task message too deeply nested to be handled is still handled.

The prefork pool pickles a task's arguments to hand them to a child process; a payload nested
a few hundred levels deep makes that raise RecursionError in the worker's main process, which
then dies, and every restarted worker dies on the same restored message. The worker's request
class measures the nesting first (iteratively, so measuring cannot recurse) and hands such a
task its arguments' outline with `unprocessable=<reason>`: the task dead-letters it with that
reason, its message is acknowledged, and the worker goes on.
"""
from __future__ import annotations

import json
from typing import Any

from celery.worker.request import Request

MAX_DEPTH = 100  # real Prepr payloads nest about ten levels
NOT_KEPT = "<not kept: nested too deeply>"


def too_deep(value: Any, limit: int = MAX_DEPTH) -> bool:
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(node, dict):
            stack.extend((child, depth + 1) for child in node.values())
        elif isinstance(node, (list, tuple)):
            stack.extend((child, depth + 1) for child in node)
    return False


def outline(value: Any) -> Any:
    """A mapping's scalars (ids, event name) and a marker for everything nested."""
    if isinstance(value, dict):
        return {k: v if isinstance(v, (str, int, float, bool)) or v is None else NOT_KEPT for k, v in value.items()}
    return value if isinstance(value, (str, int, float, bool)) or value is None else NOT_KEPT


class GuardedRequest(Request):
    """The request class of the worker's tasks (their `Request=`): what is handed to the pool
    (the request's args and kwargs, and the message body) is the outline when too deep."""

    def _guarded(self) -> tuple[list[Any], dict[str, Any]] | None:
        if not hasattr(self, "_outline"):
            args, kwargs = self._request_dict.get("args") or [], self._request_dict.get("kwargs") or {}
            self._outline: tuple[list[Any], dict[str, Any]] | None = None
            if too_deep(args) or too_deep(kwargs):
                reason = f"payload nested deeper than {MAX_DEPTH} levels"
                self._outline = ([outline(a) for a in args],
                                 {**{k: outline(v) for k, v in kwargs.items()}, "unprocessable": reason})
        return self._outline

    @property
    def request_dict(self) -> dict[str, Any]:
        guarded = self._guarded()
        if guarded is None:
            return self._request_dict
        return {**self._request_dict, "args": guarded[0], "kwargs": guarded[1]}

    @property
    def body(self) -> Any:
        guarded = self._guarded()
        if guarded is None:
            return self._body
        embed = {k: self._request_dict.get(k) for k in ("callbacks", "errbacks", "chain", "chord")}
        if self._decoded:
            return guarded[0], guarded[1], embed
        return json.dumps([guarded[0], guarded[1], embed]).encode()
