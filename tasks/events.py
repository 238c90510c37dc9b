"""The event task: skip our own writes, match, fetch once, plan, lock, execute, trace.

Effects happen at least once but change things once: the plan is recomputed against the item's
current state on every attempt (retry, re-delivery after a worker died, replay), so a write
that already landed plans nothing the second time.
"""
from __future__ import annotations

import logging
import time
from typing import Any

import redis
import sentry_sdk

from automation import evaluate
from prepr.errors import PreprError

from .backfill import scoped
from .celery_app import app
from .deadletters import DeadLetter
from .execute import LoopSuspected, Run, execute_plan, resource_of
from .itemstate import ItemBusy, ItemState
from .retry import countdown
from .runtime import RulesUnavailable, Runtime, runtime

log = logging.getLogger("tasks.events")


def own_write(envelope: dict[str, Any], automation_user: str | None) -> bool:
    """Was this event caused by the automation itself? `performed_by` is an id or {"id": …}."""
    if not automation_user:
        return False
    performer = envelope.get("performed_by")
    if isinstance(performer, dict):
        performer = performer.get("id")
    return performer == automation_user


@app.task(name="tasks.process_event", bind=True, max_retries=None)
def process_event(self, envelope: dict[str, Any], replay_of: str | None = None) -> str:
    rt = runtime()
    run = Run(envelope, attempt=self.request.retries + 1, replay_of=replay_of,
              redelivered=bool((self.request.delivery_info or {}).get("redelivered")))
    rt.api.add_listener(run.on_call)
    try:
        outcome = _process(rt, envelope, run)
    except (ItemBusy, RulesUnavailable) as exc:
        run.finish(f"waiting: {exc}")
        rt.traces.write(str(envelope["id"]), "run", run.to_json())
        raise self.retry(countdown=countdown(min(self.request.retries, 3), None, base=1.0), max_retries=None)
    except PreprError as exc:
        outcome = _failed(self, rt, envelope, run, exc)
    except LoopSuspected as exc:
        outcome = _dead_letter(rt, envelope, run, "loop suspected", str(exc), exc.rule_ids)
    except redis.RedisError:
        raise self.retry(countdown=5, max_retries=None)  # the store blinked: try again, lose nothing
    except Exception as exc:  # a bug, not bad input: keep the event for replay once fixed
        sentry_sdk.capture_exception(exc)
        log.warning("event %s failed unexpectedly", envelope.get("id"), exc_info=True)  # reported above
        outcome = _dead_letter(rt, envelope, run, "internal error", f"{type(exc).__name__}: {exc}",
                               run.current_rules, report=False)
    finally:
        rt.api.remove_listener(run.on_call)
    if not run.traced:
        run.finish(outcome)
        rt.traces.write(str(envelope["id"]), "run", run.to_json())
    resource, item_id = resource_of(envelope)
    log.info("event %s %s %s %s: %s (%.1f ms)", envelope["id"], envelope.get("event"), resource, item_id, outcome,
             run.elapsed_ms)
    return outcome


def _process(rt: Runtime, envelope: dict[str, Any], run: Run) -> str:
    settings = rt.settings
    if own_write(envelope, settings.automation_user_id):
        return "skipped: performed by the automation"
    rules = rt.rules
    if envelope.get("backfill"):  # a backfill job runs its one rule (see tasks.backfill)
        rules = scoped(rules, envelope)
        if rules is None:
            return "ignored: the backfilled rule no longer listens to this event"
    if not rules.rules_for(str(envelope["event"])):
        return "ignored: no enabled rule listens to this event"
    resource, item_id = resource_of(envelope)
    if item_id is None:
        return "ignored: the payload has no item id"
    state = ItemState(rt.redis, f"{resource}:{item_id}", lock_timeout=settings.visibility_timeout,
                      loop_max_writes=settings.loop_max_writes, loop_window=settings.loop_window)
    # The plan is made again under the lock only if a `changed` condition reads the item's snapshot.
    fetch = rules.fetch_plan(envelope)
    snapshot, last_fired = state.begin(blocking_timeout=min(30, settings.visibility_timeout / 2))
    try:
        if snapshot is not None and rules.changed_fields(str(envelope["event"])):
            fetch = rules.fetch_plan(envelope, snapshot=snapshot)
        item = None
        if fetch is not None:
            item = rt.api.request("GET", fetch.path, params=list(fetch.params))
            if not isinstance(item, dict) or "id" not in item:
                raise PreprError("unexpected answer: not a resource object", status=200, method="GET",
                                 path=fetch.path, body_excerpt=str(item)[:200], retryable=True)
            run.fetched = fetch.to_json()
        evaluation = evaluate(rules, envelope, item, snapshot=snapshot, last_fired=last_fired,
                              channels=rt.channels() if rules.needs_channels(str(envelope["event"])) else None,
                              now=time.time())
        run.evaluation = evaluation.to_json()
        outcome = execute_plan(rt, evaluation.plan, state, run, envelope)
    except BaseException:
        state.release()
        raise
    run.finish(outcome)
    throttled = [rule_id for rule_id in evaluation.fired if getattr(rules.get(rule_id), "throttle_seconds", None)]
    # state, trace and lock release in one round trip; only throttled rules need their last firing
    state.end(evaluation.snapshot, throttled,
              also=lambda pipe: rt.traces.write(str(envelope["id"]), "run", run.to_json(), pipe))
    run.traced = True
    return outcome


def _failed(task: Any, rt: Runtime, envelope: dict[str, Any], run: Run, exc: PreprError) -> str:
    run.error = exc.to_dict()
    if exc.retryable and task.request.retries < rt.settings.task_max_retries:
        delay = countdown(task.request.retries, exc.retry_after,
                          ceiling=max(1.0, rt.settings.visibility_timeout - 30))
        run.finish(f"retrying in {delay:.1f}s")
        rt.traces.write(str(envelope["id"]), "run", run.to_json())
        raise task.retry(countdown=delay, exc=None, max_retries=None)
    return _dead_letter(rt, envelope, run, "retries exhausted" if exc.retryable else "request refused",
                        str(exc), run.current_rules, exc)


def _dead_letter(rt: Runtime, envelope: dict[str, Any], run: Run, reason: str, error: str,
                 rule_ids: list[str], exc: PreprError | None = None, report: bool = True) -> str:
    letter = DeadLetter(
        event_id=str(envelope["id"]), reason=reason, task="tasks.process_event", args=[envelope],
        rule_id=",".join(rule_ids) or None, attempts=run.attempt, error=error,
        request={"method": exc.method, "path": exc.path} if exc and exc.method else run.last_request,
        response={"status": exc.status, "body_excerpt": exc.body_excerpt} if exc else None,
    )
    letter_id = rt.dead.add(letter, report=report)
    # a warning: the report above is the one Sentry event for this failure
    log.warning("event %s dead-lettered (%s): %s [letter %s]", envelope["id"], reason, error, letter_id)
    return f"dead-lettered: {reason} (letter {letter_id})"
