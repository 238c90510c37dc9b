"""The `backfill` command: list, skip what this run already enqueued, enqueue the rest, then follow
the jobs to their outcomes (read from their traces: cli/outcomes.py) and end with a tally; see
tasks.backfill for the decisions. Exit 0 when done, 1 when Prepr refused the listing or a job
failed or was dead-lettered, 2 for a setup error, 128+signal when stopped while enqueueing (run
the same command again to resume); Ctrl-C while following only stops following."""
from __future__ import annotations

import json
import signal
import sys
import time
from typing import Any, Iterator, NoReturn

import click

from automation import RuleSetError, load_rules
from prepr.errors import PreprError
from prepr.filters import UnsupportedFilter, encode_filter
from prepr.ratelimit import RateLimiter
from prepr_automation import store
from prepr_automation.settings import load_settings
from tasks.backfill import QUEUE, Cursor, backfill_event, listing_filter, rule_filter
from tasks.messages import task_message
from prepr_automation.connect import prepr_client

from .outcomes import Outcomes


class Stop:
    """Ctrl-C / SIGTERM ask for a stop after the current item; a second Ctrl-C stops at once."""

    def __init__(self) -> None:
        self.signal: int | None = None

    def __enter__(self) -> "Stop":
        self._old = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}
        return self

    def _handle(self, signum: int, _frame: Any) -> None:
        self.signal = signum
        signal.signal(signum, self._old[signum])

    def __exit__(self, *_: Any) -> None:
        for signum, handler in self._old.items():
            signal.signal(signum, handler)

    def __bool__(self) -> bool:
        return self.signal is not None


def pending(listing: Iterator[dict[str, Any]], seen: Any, limit: int | None,
            stop: Stop) -> tuple[list[str], int, int]:
    """(ids to enqueue, how many listed, how many skipped as already enqueued); asks the cursor a
    page at a time, and stops reading once `limit` new items are found."""
    todo: list[str] = []
    listed = skipped = 0
    page: list[str] = []

    def flush() -> None:
        nonlocal skipped
        for item_id, done in zip(page, seen(page)):
            if done:
                skipped += 1
            elif limit is None or len(todo) < limit:
                todo.append(item_id)
        page.clear()

    for item in listing:
        listed += 1
        page.append(str(item["id"]))
        if len(page) >= 100 or (limit is not None and len(todo) + len(page) >= limit):
            flush()
        if stop or (limit is not None and len(todo) >= limit):
            break
    flush()
    return todo, listed, skipped


def _fail(message: str, code: int = 2) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def _user_filter(text: str | None) -> dict[str, Any] | None:
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError as exc:
        _fail(f"--filter is not JSON: {exc}")
    if not isinstance(value, dict):
        _fail("--filter must be a JSON object, e.g. '{\"tags\": {\"in\": [\"sport\"]}}'")
    return value


def _progress() -> Any:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description:>9}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    TextColumn("{task.fields[note]}"), console=Console(stderr=True))


@click.command("backfill")
@click.argument("rule_id")
@click.option("--filter", "filter_json", metavar="JSON",
              help="a Prepr filter ANDed with the rule's conditions, e.g. '{\"model\": {\"eq\": \"Article\"}}'")
@click.option("--limit", type=click.IntRange(min=1), help="enqueue at most N new items (run again for more)")
@click.option("--dry-run", is_flag=True, help="list and count what would be enqueued; enqueue nothing")
@click.option("--restart", is_flag=True, help="forget what earlier runs with these arguments enqueued")
@click.option("--window", type=click.IntRange(min=1), default=50, show_default=True,
              help="at most this many backfill jobs waiting on the queue at once")
def backfill(rule_id: str, filter_json: str | None, limit: int | None, dry_run: bool, restart: bool,
             window: int) -> None:
    """Run one rule over existing content items: one job per item, resumable (progress bar)."""
    settings = load_settings(require=("access_token",), cli=True)
    user_filter = _user_filter(filter_json)
    try:
        rules = load_rules(settings.rules_path)
    except RuleSetError as exc:
        _fail(f"{settings.rules_path} has {len(exc.errors)} error(s); see `prepr-automation validate`")
    rule = rules.get(rule_id)
    if rule is None:
        _fail(f"no rule {rule_id!r} in {settings.rules_path} (rules: {', '.join(r.id for r in rules.rules)})")
    if not rule.enabled:
        _fail(f"rule {rule_id} is disabled ({rule.disabled_reason}); the worker would not run it")
    event = backfill_event(rule)
    if event is None:
        _fail(f"rule {rule_id} listens to {', '.join(rule.on)}: no content-item event a backfill can stand for")
    parts, left = rule_filter(rule.when)
    try:
        mapping = listing_filter(parts, user_filter, left)
    except UnsupportedFilter as exc:
        _fail(f"--filter: {exc}")
    redis = store.client_for(settings)
    cursor = Cursor(redis, rule_id, user_filter)
    run_id, before = cursor.open(restart, create=not dry_run)
    query = "&".join(f"{k}={v}" for k, v in encode_filter(mapping)) or "none (every content item)"
    label = f"run {run_id}" if not dry_run else "dry run" + (f" of run {run_id}" if before and not restart else "")
    click.echo(f"backfill {rule_id} as {event} events ({label})\n  Prepr filter: {query}")
    if left:
        click.echo(f"  left to the worker: {'; '.join(left)}")
    if before and not (dry_run and restart):
        click.echo(f"  resuming: {before} item(s) already enqueued by this run (--restart to start over)")
    seen = (lambda ids: [False] * len(ids)) if dry_run and restart else cursor.seen
    # a dry run leaves nothing in the store, not even the dialect it found out
    client = prepr_client(settings, None if dry_run else redis, RateLimiter(redis, settings.rate_limit, key="prepr"))
    with Stop() as stop, _progress() as progress:
        listing = progress.add_task("listed", total=None, note="")

        def counted() -> Iterator[dict[str, Any]]:
            for item in client.list_items(filter=mapping, fields="id", sort="created_on"):
                progress.advance(listing)
                yield item

        try:
            todo, listed, skipped = pending(counted(), seen, limit, stop)
        except PreprError as exc:
            progress.stop()
            _fail(f"Prepr refused the listing: {exc}", 1)
        progress.update(listing, total=listed, completed=listed)
        sent = 0
        outcomes = Outcomes(redis)
        enqueue_stopped = bool(stop)
        if not dry_run and not stop:
            work = progress.add_task("enqueued", total=len(todo), note="")
            processed = progress.add_task("processed", total=len(todo), note="")

            def follow() -> None:
                progress.update(processed, advance=outcomes.poll(), note=outcomes.note())

            for item_id in todo:
                while not stop and redis.llen(QUEUE) >= window:
                    progress.update(work, note=f"waiting for the worker ({window}+ jobs queued)")
                    follow()
                    time.sleep(0.2)
                if stop:
                    break
                if _enqueue(cursor, run_id, rule_id, event, item_id, settings.dedupe_ttl, settings.trace_ttl):
                    sent += 1
                    outcomes.add(f"backfill-{run_id}-{item_id}")
                else:
                    skipped += 1  # another run with these arguments got there first
                progress.update(work, advance=1, note="")
                follow()
            progress.update(processed, total=sent)
            enqueue_stopped = bool(stop)
            while outcomes.pending and not stop:  # then follow the worker to the last job
                follow()
                time.sleep(0.2)
            progress.update(processed, advance=outcomes.poll(force=True), note=outcomes.note())
    if dry_run:
        for item_id in todo:
            click.echo(item_id)
        click.echo(f"dry run: would enqueue {len(todo)} item(s); {skipped} already enqueued; listed {listed}")
        return
    cursor.close(finished=not enqueue_stopped and (limit is None or len(todo) < limit))
    click.echo(f"enqueued {sent} item(s) on the {QUEUE} queue; {skipped} skipped (already enqueued); listed {listed}")
    if sent:
        click.echo(f"  {outcomes.summary()}")
        click.echo(f"  follow one: prepr-automation trace backfill-{run_id}-{todo[0]}")
    if enqueue_stopped:
        name = signal.Signals(stop.signal).name if stop.signal else "signal"
        click.echo(f"stopped by {name}: run the same command again to resume", err=True)
        sys.exit(128 + (stop.signal or 0))
    if stop:
        click.echo("stopped following the jobs; the worker goes on with them (see `prepr-automation trace`)", err=True)
    if limit is not None and len(todo) >= limit:
        click.echo("  --limit reached: run the same command again for the next items")
    if outcomes.tally["failed"] or outcomes.tally["dead-lettered"]:
        click.echo("  see them: prepr-automation dead-letters list", err=True)
        sys.exit(1)


def _enqueue(cursor: Cursor, run_id: str, rule_id: str, event: str, item_id: str, seen_ttl: int,
             trace_ttl: int) -> bool:
    """One synthetic event for one item, pushed and recorded in one atomic step."""
    event_id = f"backfill-{run_id}-{item_id}"
    backfill = {"rule": rule_id, "run": run_id}
    envelope = {"id": event_id, "event": event, "created_on": int(time.time()), "payload": {"id": item_id},
                "backfill": backfill}
    record = json.dumps({"event": event, "received_at": time.time(), "status": "queued", "backfill": backfill})
    return cursor.enqueue(event_id, item_id, task_message(envelope, QUEUE), record, seen_ttl, trace_ttl)
