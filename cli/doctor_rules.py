"""`doctor`'s look at the rule set: valid, its tests pass, and the dialect has what it uses.

The same loading and test run as `validate` and `test` (automation.load_rules, ruletests.run_case),
then the load again with the dialect Prepr speaks, so what that dialect has no equivalent for
(trigger_webhooks in content_items) is one ✗ per use at file:line:col. Channels are legacy in
today's Prepr: when a rule assigns or removes channels, one call asks whether the environment has any.
"""
from __future__ import annotations

from typing import Callable

from automation import RuleSet, RuleSetError, load_rules
from automation.events import kinds_of
from automation.ruletests import run_case

from .doctor_lines import Line, bad, good

CHANNEL_ACTIONS = ("assign_channels", "remove_channels")
# Families only today's webhooks send (SPEC §9): an environment on the seeds' API may never send them.
TODAY_ONLY = {"storage_file", "cdn_file", "schema", "segment", "tag"}


def rule_lines(path: str, dialect: str | None, has_channels: Callable[[], bool] | None) -> list[Line]:
    """`dialect`: what Prepr speaks (None: unknown, not checked); `has_channels`: asks Prepr."""
    try:
        ruleset = load_rules(path)
    except RuleSetError as exc:
        return [bad(f"the rule set at {path} is invalid: {len(exc.errors)} error(s), the first: {exc.errors[0]}",
                    "run `prepr-automation validate` for all of them")]
    s = ruleset.summary()
    lines = [good(f"the rule set is valid: {s['files']} file(s), {s['rules']} rule(s), {s['enabled']} enabled "
                  f"({path})"), _tests(ruleset)]
    if dialect is not None:
        lines += _in_dialect(path, ruleset, dialect, has_channels)
    return lines


def _tests(ruleset: RuleSet) -> Line:
    results = [run_case(ruleset, case) for case in ruleset.cases]
    failed = [r for r in results if not r.passed]
    if failed:
        first = failed[0].case
        return bad(f"{len(failed)} of {len(results)} rule test(s) fail, the first: {first.file}:{first.line} "
                   f"{first.name}", "run `prepr-automation test` for what differs")
    return good(f"the rule tests pass ({len(results)})" if results else "the rule set has no rule tests")


def _in_dialect(path: str, ruleset: RuleSet, dialect: str,
                has_channels: Callable[[], bool] | None) -> list[Line]:
    try:
        load_rules(path, dialect=dialect)
    except RuleSetError as exc:
        return [bad(f"{error}", f"disable the rule (`disabled: why`) or change it: Prepr speaks the {dialect} dialect")
                for error in exc.errors]
    lines = []
    users = [r for r in ruleset.enabled if any(a.name in CHANNEL_ACTIONS for a in r.actions)]
    if users and has_channels is not None and not has_channels():
        lines += [bad(f"rule {r.id} ({r.file}:{r.line}) uses channels, but the environment has none (channels are "
                      "legacy in today's Prepr)", "disable the rule (`disabled: why`) or create the channels in Prepr")
                  for r in users]
    note = ""
    if dialect == "publications":
        idle = [r.id for r in ruleset.enabled if kinds_of(r.on) and kinds_of(r.on) <= TODAY_ONLY]
        if idle:
            note = f"; {', '.join(idle)} listen(s) only to events Prepr sends today, which this environment may not"
    if not lines:
        lines.append(good(f"every enabled rule's events and actions exist in the {dialect} dialect{note}"))
    return lines
