"""Operator commands over the store: `trace`, `dead-letters list|replay`, `restore`."""
from __future__ import annotations

import json
import sys
from datetime import datetime, timezone

import click

from automation.render import rule_lines
from prepr_automation import store
from prepr_automation.settings import load_settings

from tasks import backups
from tasks.replay import replay_letters
from tasks.runtime import runtime


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


@click.command("trace")
@click.argument("event_id")
@click.option("--json", "as_json", is_flag=True, help="the raw trace (as GET /events/<id> serves it)")
def trace(event_id: str, as_json: bool) -> None:
    """What happened to one event (the same data as GET /events/<id>)."""
    record = runtime(load_settings(cli=True)).traces.read(event_id)
    if record is None:
        click.echo(f"no trace for {event_id} (unknown, or older than 7 days)", err=True)
        sys.exit(1)
    if as_json:
        click.echo(json.dumps({"event_id": event_id, **record}, indent=2, default=str))
        return
    for line in describe(event_id, record):
        click.echo(line)


def describe(event_id: str, record: dict) -> list[str]:
    """The trace as a person reads it: receipt, each rule and why, each call, the outcome."""
    received = record.get("received") or {}
    lines = [f"event {event_id}  {received.get('event', '?')}  received {_when(received.get('received_at', 0))} "
             f"({received.get('status', '?')}; {record.get('duplicates', 0)} duplicate(s))"]
    run = record.get("run")
    if not run:
        return lines + ["  not processed yet"]
    fetched = run.get("fetched")
    if fetched:
        lines.append(f"  fetched {fetched['path']} fields={','.join(fetched['fields'])} (missing: {', '.join(fetched['missing'])})")
    for rule in (run.get("evaluation") or {}).get("rules", []):
        lines += [f"  {line}" for line in rule_lines(rule)]
    for call in run.get("calls", []):
        lines.append(f"  sent {call['method']} {call['path']} -> {call.get('status') or call.get('error')} ({call['ms']} ms)")
    for planned in run.get("planned", []):
        if not planned.get("sent"):
            lines.append(f"  planned, not sent: {planned['method']} {planned['path']} {json.dumps(planned.get('body'))}")
    lines.append(f"  outcome: {run.get('outcome')}  (attempt {run.get('attempt')}, {run.get('elapsed_ms')} ms)")
    for key, bulk in sorted((k, v) for k, v in record.items() if k.startswith("bulk:")):
        lines.append(f"  {key}: {bulk.get('outcome')}" + (f"  backup {bulk['backup_id']}" if bulk.get("backup_id") else ""))
    return lines


@click.group("dead-letters")
def dead_letters() -> None:
    """Events that failed for good, and re-running them."""


@dead_letters.command("list")
@click.option("--json", "as_json", is_flag=True, help="one JSON object per line")
def list_letters(as_json: bool) -> None:
    letters = list(runtime(load_settings(cli=True)).dead)
    for letter in letters:
        if as_json:
            click.echo(json.dumps(letter.to_json(), default=str))
            continue
        status = (letter.response or {}).get("status")
        request = letter.request or {}
        click.echo(f"{letter.id}  {_when(letter.at)}  event {letter.event_id}  rule {letter.rule_id or '-'}  "
                   f"{letter.reason}  {request.get('method', '')} {request.get('path', '')} "
                   f"{'status ' + str(status) if status else ''} attempts {letter.attempts}".rstrip())
    if not as_json:
        click.echo(f"{len(letters)} dead letter(s)")


@dead_letters.command("replay")
@click.argument("letter_ids", nargs=-1)
def replay(letter_ids: tuple[str, ...]) -> None:
    """Re-run the given dead letters (all of them when no id is given)."""
    settings = load_settings(cli=True)
    replayed, missing = replay_letters(runtime(settings).dead, list(letter_ids), store.broker_url(settings))
    for letter in replayed:
        click.echo(f"replayed {letter.id} (event {letter.event_id})")
    for letter_id in missing:
        click.echo(f"no dead letter {letter_id}", err=True)
    sys.exit(1 if missing else 0)


@click.command("restore")
@click.argument("backup_id")
def restore(backup_id: str) -> None:
    """Undo a bulk put / bulk delete from the backup taken before it."""
    rt = runtime(load_settings(require=("access_token",), cli=True))
    record = backups.load(rt.redis, backup_id)
    if record is None:
        click.echo(f"no backup {backup_id} (unknown, or older than {backups.BACKUP_DAYS} days)", err=True)
        sys.exit(1)
    verb = "put back" if record["kind"] == "bulk_put" else "re-created"

    def report(old: str, new: str) -> None:
        click.echo(f"{verb} {old}" + (f" as {new}" if new != old else ""))

    done = backups.restore(record, rt.api, report)
    click.echo(f"restored {len(done)} item(s) from {backup_id} ({record['kind']})")


COMMANDS = [trace, dead_letters, restore]
