"""The one retry / dead-letter policy of the event task and the bulk task.

- the item is busy, or no rule set could be loaded: wait and retry, never dead-letter;
- the store (Redis) failed: the message is requeued (Reject requeue=True); if even that cannot
  reach Redis, the requeue is owed and sent once Redis answers (tasks.transport) — the message
  is never acknowledged unrun, so never lost;
- a retryable Prepr error with attempts left: retry with backoff (tasks.retry); a retry that
  cannot be published is requeued the same way instead of being dropped;
- anything else is final: a dead letter with the reason, so one bad event never blocks the
  queue (a payload too deeply nested to handle included) and can be replayed once fixed.
"""
from __future__ import annotations

import json
import logging
import time
from typing import Any, Callable, NoReturn

import redis
import sentry_sdk
from celery.exceptions import Reject, Retry
from kombu.exceptions import OperationalError

from prepr.dialects import Unsupported
from prepr.errors import PreprError

from .deadletters import DeadLetter
from .execute import LoopSuspected
from .itemstate import ItemBusy
from .retry import countdown
from .runs import Run
from .runtime import RulesUnavailable, Runtime

log = logging.getLogger("tasks.policy")
STORE_PAUSE = 1.0  # seconds before a requeue after a store error, so an outage is not a busy loop
Letter = Callable[[str, str, "PreprError | None"], list[DeadLetter]]
STORE_ERRORS = (redis.RedisError, OperationalError)


class Unprocessable(Exception):
    """The message cannot be handled as it is (tasks.poison): dead-lettered with the reason."""


def settle(task: Any, rt: Runtime, exc: BaseException, run: Run, letters: Letter) -> str:
    """Retry (raises) or dead-letter (returns the outcome) the work that raised `exc`."""
    retries = task.request.retries
    if isinstance(exc, (ItemBusy, RulesUnavailable)):
        _retry(task, run, f"waiting: {exc}", countdown(min(retries, 3), None, base=1.0))
    if isinstance(exc, STORE_ERRORS):
        state = "full" if isinstance(exc, redis.OutOfMemoryError) else "unreachable"  # full: maxmemory reached
        run.finish(f"waiting: the store is {state} ({type(exc).__name__}), requeued")
        requeue(exc)
    prepr = exc if isinstance(exc, PreprError) else None
    if prepr is not None:
        run.error = prepr.to_dict()
        if prepr.retryable and retries < rt.settings.task_max_retries:
            delay = countdown(retries, prepr.retry_after, ceiling=max(1.0, rt.settings.visibility_timeout - 30))
            _retry(task, run, f"retrying in {delay:.1f}s", delay)
        reason = "retries exhausted" if prepr.retryable else "request refused"
        if isinstance(prepr, Unsupported):
            reason = f"unsupported: {prepr.message}"
        error = str(prepr)
    elif isinstance(exc, LoopSuspected):
        reason, error, run.current_rules = "loop suspected", str(exc), exc.rule_ids
    elif isinstance(exc, Unprocessable):
        reason, error = f"cannot process: {exc}", str(exc)
    elif isinstance(exc, RecursionError):
        reason, error = "cannot process: nested too deeply", "RecursionError"
    else:  # a bug, not bad input: keep the work for replay once fixed
        sentry_sdk.capture_exception(exc)
        log.warning("run %s failed unexpectedly", run.id, exc_info=exc)  # reported above
        reason, error = "internal error", f"{type(exc).__name__}: {exc}"[:500]
    report = reason != "internal error"  # the report above is the one Sentry event for this failure
    ids = [rt.dead.add(_storable(letter), report=report) for letter in letters(reason, error, prepr)]
    for letter_id in ids:
        log.warning("run %s dead-lettered (%s): %s [letter %s]", run.id, reason, error, letter_id)
    return f"dead-lettered: {reason} (letter {', '.join(ids)})"


def requeue(exc: BaseException) -> NoReturn:
    """The store failed: this message goes back on its queue, after a pause so an outage is not a
    busy loop (if even the requeue cannot reach Redis, tasks.transport sends it once it answers)."""
    time.sleep(STORE_PAUSE)
    raise Reject(exc, requeue=True)


def letter_fields(run: Run, error: str, exc: PreprError | None) -> dict[str, Any]:
    """What every dead letter of this run says about the failing request."""
    return dict(attempts=run.attempt, error=error,
                rule_id=",".join(run.current_rules) or None,
                request={"method": exc.method, "path": exc.path} if exc and exc.method else run.last_request,
                response={"status": exc.status, "body_excerpt": exc.body_excerpt} if exc else None)


def _retry(task: Any, run: Run, note: str, delay: float) -> NoReturn:
    run.finish(note)
    try:
        raise task.retry(countdown=delay, exc=None, max_retries=None)
    except Retry:
        raise
    except Exception as exc:  # the retry could not be published: keep this message instead
        run.finish(f"waiting: the retry could not be published ({type(exc).__name__}), requeued")
        time.sleep(STORE_PAUSE)
        raise Reject(exc, requeue=True) from exc


def _storable(letter: DeadLetter) -> DeadLetter:
    """A letter whose arguments cannot be stored as JSON keeps their shape, not their content."""
    try:
        json.dumps(letter.args)
    except (RecursionError, ValueError, TypeError):
        letter.args = [_outline(arg) for arg in letter.args]
    return letter


def _outline(arg: Any) -> Any:
    if isinstance(arg, dict):
        return {k: (v if isinstance(v, (str, int, float, bool)) or v is None else "<not kept: too deeply nested>")
                for k, v in arg.items()}
    return "<not kept: too deeply nested>"
