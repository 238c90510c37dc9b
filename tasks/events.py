"""The event task: skip our own writes, coalesce per item, fetch once, plan, lock, execute, trace.

Effects happen at least once but change things once: the plan is recomputed against the item's
current state on every attempt (retry, re-delivery after a worker died, replay), so a write
that already landed plans nothing the second time, and effects already sent are recorded
(tasks.execute). With COALESCE_SECONDS > 0 the events of one item that arrive close together
are handled by one run (tasks.coalesce, tasks.group).
"""
from __future__ import annotations

import logging
from typing import Any, Callable

from .backfill import scoped
from .celery_app import app
from .coalesce import Pending, burst_size
from .deadletters import DeadLetter
from .execute import execute_plan, resource_of
from .group import plan_run
from .itemstate import ItemState
from .poison import GuardedRequest
from .policy import STORE_ERRORS, Unprocessable, letter_fields, requeue, settle
from .runs import Run, run_of
from .runtime import Runtime, runtime

log = logging.getLogger("tasks.events")


def own_write(envelope: dict[str, Any], automation_user: str | None) -> bool:
    """Was this event caused by the automation itself? `performed_by` is an id or {"id": …}."""
    if not automation_user:
        return False
    performer = envelope.get("performed_by")
    if isinstance(performer, dict):
        performer = performer.get("id")
    return performer == automation_user


@app.task(name="tasks.process_event", bind=True, max_retries=None, Request=GuardedRequest)
def process_event(self, envelope: dict[str, Any], replay_of: str | None = None, again: bool = False,
                  unprocessable: str | None = None) -> str:
    """`again`: a replay a person asked for sends effects that were already sent;
    `unprocessable`: why the message cannot be handled (tasks.poison): dead-lettered at once."""
    rt = runtime()
    redelivered = bool((self.request.delivery_info or {}).get("redelivered"))
    lead: Pending | None = None
    with run_of(rt, self.request.retries + 1, replay_of, redelivered, again) as run:
        run.add(envelope)
        try:
            if unprocessable:
                raise Unprocessable(unprocessable)
            skip = _skip(rt, envelope)
            if skip is not None:
                run.finish(skip)
            elif rt.settings.coalesce_seconds > 0 and not (envelope.get("backfill") or replay_of or again):
                outcome, lead = _join(rt, envelope, run)
                run.finish(outcome)
            else:
                run.finish(_round(rt, envelope, run, None))
        except Exception as exc:
            run.finish(settle(self, rt, exc, run, _letters(run)))
    _logged(envelope, run.outcome, run)
    if lead is not None:  # a burst: the run starts at once, here (a retry joins and leads again)
        return _lead(self, rt, lead, redelivered)
    return run.outcome


def _join(rt: Runtime, envelope: dict[str, Any], run: Run) -> tuple[str, Pending | None]:
    """Add the event to its item's pending set; the first one leads the run (tasks.coalesce):
    scheduled when the window has passed, or returned to be run at once in a burst."""
    resource, item_id = resource_of(envelope)
    pending = Pending(rt.redis, resource, str(item_id), rt.settings.coalesce_seconds)
    leads, leader = pending.join(envelope)
    if not leads:
        return f"merged into run {leader}", None
    run.id = leader
    due = pending.schedule(run_pending, burst_size(rt.settings.rate_limit, rt.settings.coalesce_seconds))
    if due is None:
        return f"merged into run {leader} (which it leads, a burst: at once)", pending
    return f"merged into run {leader} (which it leads, due in {due:.1f}s)", None


@app.task(name="tasks.run_pending", bind=True, max_retries=None)
def run_pending(self, resource: str, item_id: str, leader: str) -> str:
    """The run of an item's pending events, once the window has passed (else scheduled again)."""
    rt = runtime()
    pending = Pending(rt.redis, resource, item_id, rt.settings.coalesce_seconds, leader=leader)
    try:  # a store error before the run: this message is requeued, never acknowledged unrun
        if pending.window_left() > 0:
            return f"not yet: due again in {pending.schedule(run_pending):.1f}s"
    except STORE_ERRORS as exc:
        requeue(exc)
    return _lead(self, rt, pending, bool((self.request.delivery_info or {}).get("redelivered")))


def _lead(task: Any, rt: Runtime, pending: Pending, redelivered: bool) -> str:
    """The leader's run: everything pending for the item, under its lock, in one round. A store
    error before the run is done requeues the message (tasks.policy); after it, the claim is
    released once the store answers and the sweep leads what is left (tasks.coalesce)."""
    try:
        pending.started()
    except STORE_ERRORS as exc:
        requeue(exc)
    with pending.leading(), run_of(rt, task.request.retries + 1, None, redelivered) as run:
        run.id = pending.leader
        try:
            item = {"event": f"{pending.resource}.changed", "payload": {"id": pending.item_id}}
            run.finish(_round(rt, item, run, pending) or "nothing pending")
        except Exception as exc:
            run.finish(settle(task, rt, exc, run, _letters(run, pending)))
    try:
        if not pending.resign():  # events arrived during the run: they get a window of their own
            pending.schedule(run_pending)
    except STORE_ERRORS:
        pending.release_later()
    return run.outcome


def _skip(rt: Runtime, envelope: dict[str, Any]) -> str | None:
    """Why this event needs no run at all (None: it does)."""
    if own_write(envelope, rt.settings.automation_user_id):
        return "skipped: performed by the automation"
    rules = rt.rules
    if envelope.get("backfill"):
        if scoped(rules, envelope) is None:
            return "ignored: the backfilled rule no longer listens to this event"
    elif not rules.rules_for(str(envelope["event"])):
        return "ignored: no enabled rule listens to this event"
    if resource_of(envelope)[1] is None:
        return "ignored: the payload has no item id"
    return None


def _round(rt: Runtime, envelope: dict[str, Any], run: Run, pending: Pending | None) -> str:
    """One run under the item's lock: the event alone, or everything pending for the item."""
    settings = rt.settings
    resource, item_id = resource_of(envelope)
    state = ItemState(rt.redis, f"{resource}:{item_id}", lock_timeout=settings.visibility_timeout,
                      loop_max_writes=settings.loop_max_writes, loop_window=settings.loop_window)
    snapshot, last_fired = state.begin(blocking_timeout=min(30, settings.visibility_timeout / 2))
    try:
        envelopes = pending.read() if pending is not None else [envelope]
        if not envelopes:  # another leader ran them meanwhile
            state.release()
            return ""
        run.parts.clear()
        for one in envelopes:
            run.add(one)
        rules = rt.rules
        rule_sets = [scoped(rules, e) if e.get("backfill") else rules for e in envelopes]
        plan = plan_run(rt, run, rule_sets, snapshot, last_fired)
        outcomes = execute_plan(rt, plan.put, plan.effects, state, run, target=(resource, str(item_id)),
                                item=plan.item)
    except BaseException:
        state.release()
        raise
    for part in run.parts:
        part.outcome = outcomes[part.id]
    run.finish(outcomes.get(str(envelope.get("id"))) or next(iter(outcomes.values())))

    def also(pipe: Any) -> None:
        run.write(rt, pipe)
        if pending is not None:
            pending.remove(pipe, [p.id for p in run.parts])

    state.end(plan.snapshot, plan.throttled, also=also)
    for part in run.parts:
        if part.id != str(envelope.get("id")):
            _logged(part.envelope, part.outcome, run)
    return run.outcome


def _letters(run: Run, pending: Pending | None = None) -> Callable[..., list[DeadLetter]]:
    """One dead letter per event of the run, each replayable on its own; they leave the pending set."""
    def make(reason: str, error: str, exc: Any) -> list[DeadLetter]:
        if not run.parts and pending is not None:  # failed before reading them: they all fail with it
            for envelope in pending.read():
                run.add(envelope)
        letters = [DeadLetter(event_id=p.id, reason=reason, task="tasks.process_event", args=[p.envelope],
                              **letter_fields(run, error, exc)) for p in run.parts]
        if pending is not None and run.parts:
            with pending.client.pipeline(transaction=False) as pipe:
                pending.remove(pipe, [p.id for p in run.parts])
                pipe.execute()
        return letters
    return make


def _logged(envelope: dict[str, Any], outcome: str, run: Run) -> str:
    resource, item_id = resource_of(envelope)
    log.info("event %s %s %s %s: %s (%.1f ms)", envelope.get("id"), envelope.get("event"), resource, item_id, outcome,
             run.elapsed_ms)
    return outcome
