"""`validate`, `test`, `schema` and `explain`: the rule engine's commands. All I/O lives here;
automation/ is pure. explain never writes: it may GET the item and the channel list (`--fetch`).
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from xml.etree import ElementTree

import click
from rich.console import Console
from rich.markup import escape

from automation import Evaluation, FetchPlan, RuleError, RuleSetError, evaluate, load_rules
from automation.schema import rule_file_schema
from automation.ruletests import run_case
from automation.render import rule_lines, short

from prepr_automation.settings import load_settings


def _rules_path(path: str | None) -> str:
    return path or load_settings(cli=True).rules_path


def _dialect() -> str | None:
    """The dialect PREPR_API names (None for auto): what it has no equivalent for fails validate."""
    named = load_settings(cli=True).prepr_api
    return None if named == "auto" else named


def _configure_budget() -> None:
    """explain renders as the worker does: MAX_RENDERED_BYTES from the environment when it parses."""
    from automation import budget
    from prepr_automation.settings import ConfigError

    try:
        budget.configure(max_bytes=load_settings(cli=True).max_rendered_bytes)
    except ConfigError:
        pass  # explain needs no setting; the worker and web refuse a malformed one at start


def _github(error: RuleError) -> str:
    """A GitHub Actions workflow command: an annotation on the file, line and column."""
    message = (f"{error.path}: " if error.path else "") + error.message
    for char, code in (("%", "%25"), ("\r", "%0D"), ("\n", "%0A")):
        message = message.replace(char, code)
    file = error.file.replace("%", "%25").replace(",", "%2C").replace(":", "%3A")
    return f"::error file={file},line={error.line},col={error.col}::{message}"


@click.command("validate")
@click.argument("path", required=False)
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@click.option("--format", "fmt", type=click.Choice(["text", "github"]), default="text",
              help="github: workflow commands that annotate the files in a pull request")
def validate(path: str | None, as_json: bool, fmt: str) -> None:
    """Check every rule file; print file:line:col: key.path: message for each error (exit 1)."""
    target = _rules_path(path)
    try:
        ruleset = load_rules(target, dialect=_dialect())
    except RuleSetError as exc:
        if as_json:
            click.echo(json.dumps({"ok": False, "path": target, "errors": [e.to_json() for e in exc.errors]},
                                  indent=2))
        else:
            for error in exc.errors:
                click.echo(_github(error) if fmt == "github" else str(error))
            click.echo(f"{len(exc.errors)} error(s) in {target}", err=True)
        sys.exit(1)
    s = ruleset.summary()
    if as_json:
        click.echo(json.dumps({"ok": True, "path": target, "errors": [], **s, "tests": len(ruleset.cases)},
                              indent=2))
    else:
        click.echo(f"ok: {s['files']} file(s), {s['rules']} rule(s), {s['enabled']} enabled ({target})")


@click.command("test")
@click.argument("path", required=False)
@click.option("--junit-xml", "junit", type=click.Path(dir_okay=False, writable=True),
              help="also write the results as JUnit XML, for CI systems")
def test(path: str | None, junit: str | None) -> None:
    """Run the rule tests (`tests:` in rule files) offline: one line per case, exit 1 on any failure."""
    target = _rules_path(path)
    try:
        ruleset = load_rules(target, dialect=_dialect())
    except RuleSetError as exc:
        for error in exc.errors:
            click.echo(str(error))
        click.echo(f"{len(exc.errors)} error(s) in {target}: no test run", err=True)
        sys.exit(1)
    started = time.perf_counter()
    results = []
    for case in ruleset.cases:
        began = time.perf_counter()
        result = run_case(ruleset, case)
        results.append((result, time.perf_counter() - began))
        click.echo(f"{case.file}::{case.name} " + ("PASSED" if result.passed else "FAILED"))
    elapsed = time.perf_counter() - started
    failed = [r for r, _ in results if not r.passed]
    if failed:
        click.echo("\n" + " FAILURES ".center(79, "="))
        for result in failed:
            click.echo(f" {result.case.file}::{result.case.name} ".center(79, "_"))
            for failure in result.failures:
                click.echo(f"{result.case.file}:{result.case.line}: {failure}")
    passed = len(results) - len(failed)
    counts = ", ".join(part for part in (f"{len(failed)} failed" if failed else "",
                                         f"{passed} passed" if passed or not failed else "") if part)
    click.echo(f" {counts if results else 'no rule tests'} in {elapsed:.2f}s ".center(79, "="))
    if junit:
        Path(junit).write_bytes(junit_xml(results, elapsed))
    sys.exit(1 if failed else 0)


def junit_xml(results: list, elapsed: float) -> bytes:
    """The JUnit XML that CI systems read: one testcase per rule test, failures with their text."""
    suite = ElementTree.Element("testsuite", name="prepr-automation rules", tests=str(len(results)),
                                failures=str(sum(not r.passed for r, _ in results)), errors="0",
                                time=f"{elapsed:.3f}")
    for result, seconds in results:
        case = ElementTree.SubElement(suite, "testcase", classname=result.case.file, name=result.case.name,
                                      file=result.case.file, line=str(result.case.line), time=f"{seconds:.4f}")
        if not result.passed:
            failure = ElementTree.SubElement(case, "failure", message=result.failures[0].splitlines()[0])
            failure.text = "\n".join(f"{result.case.file}:{result.case.line}: {f}" for f in result.failures)
    root = ElementTree.Element("testsuites")
    root.append(suite)
    return ElementTree.tostring(root, encoding="utf-8", xml_declaration=True)


@click.command("schema")
def schema() -> None:
    """Print the JSON Schema of the rule-file format (yaml-language-server, VS Code)."""
    click.echo(json.dumps(rule_file_schema(), indent=2))


def _fetch(plan: FetchPlan | None, envelope: dict, need_channels: bool) -> tuple[dict | None, list | None]:
    from prepr_automation.connect import prepr_client

    settings = load_settings(require=("access_token",), cli=True)
    client = prepr_client(settings, None)
    try:
        item = None
        if plan is not None:
            item = client.get_resource(plan.resource, plan.id, plan.field_list)
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
    _configure_budget()
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


COMMANDS = [validate, test, schema, explain]
