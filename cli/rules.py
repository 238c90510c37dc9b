"""`validate` and `explain`: the rule engine's commands. All I/O lives here; automation/ is pure.

explain never writes: it may GET the item and the channel list (`--fetch`), nothing else.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape

from automation import Evaluation, FetchPlan, RuleSetError, evaluate, load_rules
from automation.render import rule_lines, short

from prepr_automation.settings import load_settings


def _rules_path(path: str | None) -> str:
    return path or load_settings(cli=True).rules_path


@click.command("validate")
@click.argument("path", required=False)
def validate(path: str | None) -> None:
    """Check every rule file; print file:line:col: key.path: message for each error (exit 1)."""
    target = _rules_path(path)
    try:
        ruleset = load_rules(target)
    except RuleSetError as exc:
        for error in exc.errors:
            click.echo(str(error))
        click.echo(f"{len(exc.errors)} error(s) in {target}", err=True)
        sys.exit(1)
    s = ruleset.summary()
    click.echo(f"ok: {s['files']} file(s), {s['rules']} rule(s), {s['enabled']} enabled ({target})")


def _fetch(plan: FetchPlan | None, envelope: dict, need_channels: bool) -> tuple[dict | None, list | None]:
    from prepr.client import PreprClient

    settings = load_settings(require=("access_token",), cli=True)
    client = PreprClient(settings.api_url, settings.access_token or "", settings.tracking_url)
    try:
        item = None
        if plan is not None:
            item = client.request("GET", plan.path, params=list(plan.params) or None)
        channels = list(client.list_channels()) if need_channels else []
        return item, channels
    finally:
        client.close()


@click.command("explain")
@click.argument("event_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--rules", "rules_path", help="rule file or folder (default: RULES_PATH)")
@click.option("--fetch", is_flag=True, help="read the item (and channels) from Prepr; never writes")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def explain(event_file: str, rules_path: str | None, fetch: bool, as_json: bool) -> None:
    """Dry run one event: each rule matched or not and why, then the exact API calls."""
    try:
        envelope = json.loads(Path(event_file).read_text(encoding="utf-8"))
    except ValueError as exc:
        raise click.ClickException(f"{event_file} is not JSON: {exc}")
    if not isinstance(envelope, dict) or not isinstance(envelope.get("event"), str):
        raise click.ClickException(f"{event_file} is not a Prepr event (needs 'event' and 'payload')")
    try:
        ruleset = load_rules(_rules_path(rules_path))
    except RuleSetError as exc:
        for error in exc.errors:
            click.echo(str(error), err=True)
        sys.exit(1)
    plan = ruleset.fetch_plan(envelope)
    item, channels = None, None
    if fetch:
        item, channels = _fetch(plan, envelope, ruleset.needs_channels(envelope["event"]))
    result = evaluate(ruleset, envelope, item, channels=channels)
    if as_json:
        click.echo(json.dumps({"fetch": plan.to_json() if plan else None, "fetched": fetch,
                               "evaluation": result.to_json()}, indent=2, default=str))
        return
    _print(Console(highlight=False, soft_wrap=True), envelope, plan, fetch, result)


def _print(console: Console, envelope: dict, plan: FetchPlan | None, fetched: bool, result: Evaluation) -> None:
    console.print(f"[bold]{escape(result.event)}[/bold]  event id {escape(str(envelope.get('id')))}"
                  f"  {result.resource} {escape(str(result.item_id))}")
    if plan is None:
        console.print("fetch: none needed (the payload has every field the rules read)")
    else:
        query = "&".join(f"{k}={v}" for k, v in plan.params)
        how = "fetched" if fetched else "not fetched (use --fetch); evaluated on the payload"
        console.print(f"fetch: GET {plan.path}{'?' + query if query else ''}  [dim]missing: "
                      f"{', '.join(plan.missing)}; {how}[/dim]")
    if not result.rules:
        console.print("[yellow]no enabled rule listens to this event[/yellow]")
    for rule in result.rules:
        console.print()
        for line in rule_lines(rule.to_json()):
            console.print(escape(line))
    console.print(f"\n[bold]API calls ({len(result.plan)})[/bold]" + ("" if result.plan else ": none"))
    for call in result.plan:
        query = "&".join(f"{k}={v}" for k, v in call.params or ())
        flags = [call.api, f"queue {call.queue}", f"rules {', '.join(call.rule_ids)}"]
        if call.dry_run:
            flags.append("DRY RUN: not sent")
        console.print(f"  {call.method} {escape(call.path)}{'?' + escape(query) if query else ''}"
                      f"  [dim]({'; '.join(flags)})[/dim]")
        if call.body is not None:
            console.print("    " + escape(json.dumps(call.body, ensure_ascii=False, default=str)))
        if call.meta:
            console.print(f"    [dim]{escape(short(call.meta, 200))}[/dim]")


COMMANDS = [validate, explain]
