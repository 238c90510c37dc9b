"""Rule files -> RuleSet, or RuleSetError with every problem found (never a half-loaded set).

Files: RULES_PATH is one file or a folder searched recursively for *.yaml / *.yml, in path
order. Files named by a rule's `vocabulary_file` are vocabularies, not rule files. Structure is
checked by marshmallow schemas; conditions, events and actions by their own compilers; every
error carries `file:line:col: key.path: message`.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from marshmallow import Schema, fields as mfields, validate

from prepr.filters import encode_filter as encode_prepr_filter  # the one encoding, shared with the client

from .actions import ACTIONS, BuildEnv
from .actions.base import StrictBool, load, load_partial
from .conditions import compile_condition
from .errors import RuleError, RuleSetError
from .events import check_pattern, kinds_of, only_deletes
from .model import Rule, RuleSet
from .ruletests import compile_cases
from .timeutil import parse_duration
from .yamlsrc import Reporter, Source, to_plain

_DEFAULT = object()


class FileSchema(Schema):
    version = mfields.Raw(required=True)
    rules = mfields.List(mfields.Raw(), required=True)
    tests = mfields.List(mfields.Raw())


class ThrottleSchema(Schema):
    once_within = mfields.Raw(required=True)


class RuleSchema(Schema):
    id = mfields.String(required=True, validate=validate.Regexp(
        r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$", error="use letters, digits, '-', '_' and '.'"))
    description = mfields.String()
    enabled = StrictBool()
    disabled = mfields.String(validate=validate.Length(min=1))
    on = mfields.Raw(required=True)
    when = mfields.Raw(allow_none=True)
    do = mfields.List(mfields.Raw(), required=True)
    dry_run = StrictBool()
    throttle = mfields.Nested(ThrottleSchema)
    stop = StrictBool()


def discover(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    return sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())


def load_rules(path: str | Path, *, encode_filter: Any = _DEFAULT, dialect: str | None = None) -> RuleSet:
    """Load and validate every rule file under `path`; raise RuleSetError listing all errors.
    `dialect`: the Prepr API dialect when known (PREPR_API), so what it lacks is an error."""
    root = Path(path)
    if not root.exists():
        raise RuleSetError([RuleError(str(path), 1, 1, "", "no such rule file or folder")])
    encoder = encode_prepr_filter if encode_filter is _DEFAULT else encode_filter
    vocab_files: set[Path] = set()
    compiled: list[tuple[Path, Source, Compiled]] = []
    for file in discover(root):
        source = Source.read(file)
        env = BuildEnv(source_dir=file.parent, vocab_files=vocab_files, encode_filter=encoder, dialect=dialect)
        result = _compile_file(source, env) if not source.errors else Compiled()
        compiled.append((file.resolve(), source, result))
    errors: list[RuleError] = []
    rules: list[Rule] = []
    cases: list[Any] = []
    files: list[str] = []
    first: dict[str, tuple[str, int]] = {}
    for resolved, source, result in compiled:
        if resolved in vocab_files:
            continue
        files.append(source.name)
        for rule_id, index, line, col in result.ids:  # every rule with an id, valid or not
            if rule_id in first:
                prev = first[rule_id]
                errors.append(RuleError(source.name, line, col, f"rules[{index}].id",
                                        f"duplicate id '{rule_id}' (first defined at {prev[0]}:{prev[1]})"))
            else:
                first[rule_id] = (source.name, line)
        errors.extend(source.errors)
        rules.extend(result.rules)
        cases.extend(result.cases)
    if errors:
        raise RuleSetError(errors)
    return RuleSet(tuple(rules), tuple(files), encode_filter=encoder, cases=tuple(cases))


@dataclass
class Compiled:
    """One file's rules, the (id, index, line, col) of every rule that names an id, its cases."""

    rules: list[Rule] = field(default_factory=list)
    ids: list[tuple[str, int, int, int]] = field(default_factory=list)
    cases: list[Any] = field(default_factory=list)


def _compile_file(source: Source, env: BuildEnv) -> Compiled:
    report = Reporter(source)
    out = Compiled()
    data = to_plain(source.root)
    if not isinstance(data, dict):
        report.error("a rule file is a mapping with 'version: 1' and 'rules: [...]'")
        return out
    if load(FileSchema(), data, report) is None and not isinstance(data.get("rules"), list):
        return out
    if "version" in data and data["version"] != 1:
        report.error(f"unsupported version {data['version']!r} (expected 1)", "version")
    for index, raw in enumerate(data.get("rules") or []):
        if isinstance(raw, dict) and isinstance(raw.get("id"), str):
            out.ids.append((raw["id"], index) + source.position(("rules", index, "id")))
        rule = _compile_rule(raw, report.at("rules", index), env)
        if rule is not None:
            out.rules.append(rule)
    if "tests" in data:
        ids = {rule_id for rule_id, *_ in out.ids}
        out.cases = compile_cases(data["tests"], report.at("tests"), ids)
    return out


def _compile_rule(raw: Any, report: Reporter, env: BuildEnv) -> Rule | None:
    if not isinstance(raw, dict):
        report.error("a rule is a mapping with id, on and do")
        return None
    before = report.count
    data, _ = load_partial(RuleSchema(), raw, report)
    on = raw.get("on")
    patterns = on if isinstance(on, list) else [on] if "on" in raw else []
    if "on" in raw and (not patterns or not all(isinstance(p, str) and p for p in patterns)):
        report.error("expected an event name, a glob, or a list of them", "on")
        patterns = []
    for i, pattern in enumerate(patterns if "on" in raw else []):
        problem = check_pattern(pattern)
        if problem:
            report.error(problem, *(("on", i) if isinstance(on, list) else ("on",)))
    when = compile_condition(data["when"], report.at("when")) if data.get("when") is not None else None
    steps = raw.get("do") if isinstance(raw.get("do"), list) else []
    if "disabled" in data or data.get("enabled") is False:  # kept for another dialect: not held against this one
        env = replace(env, dialect=None)
    actions = [_compile_action(entry, report.at("do", i), env, patterns) for i, entry in enumerate(steps)]
    throttle = None
    if "throttle" in data:
        throttle = parse_duration(data["throttle"]["once_within"])
        if throttle is None:
            report.error("expected a duration such as 90s, 10m, 2h, 1d", "throttle", "once_within")
    if isinstance(raw.get("do"), list) and not raw["do"] and not data.get("stop"):
        report.error("a rule needs at least one action (or stop: true)", "do")
    if "enabled" in data and "disabled" in data:
        report.key_error("give either 'enabled' or 'disabled', not both", "disabled")
    if report.count != before:
        return None
    line, col = report.source.position(report.base + ("id",))
    rule = Rule(id=data["id"], on=tuple(patterns), index=report.base[-1], actions=tuple(actions), when=when,
                description=data.get("description", ""),
                enabled=data.get("enabled", True) and "disabled" not in data,
                disabled_reason=data.get("disabled"), dry_run=data.get("dry_run", False),
                throttle_seconds=throttle, stop=data.get("stop", False), file=report.source.name,
                line=line, col=col)
    return rule


def _compile_action(entry: Any, report: Reporter, env: BuildEnv, patterns: list[str]) -> Any:
    if not isinstance(entry, dict) or len(entry) != 1:
        report.error("an action is a mapping with one action name, e.g. '- add_tags: [sport]'")
        return None
    name, args = next(iter(entry.items()))
    action = ACTIONS.get(name)
    if action is None:
        report.key_error(f"unknown action '{name}' (known: {', '.join(ACTIONS)})", name)
        return None
    allowed = action.kinds
    if allowed is not None:
        wrong = sorted(kinds_of(patterns) - allowed)
        if wrong:
            report.key_error(f"{name} cannot apply to {' or '.join(k + ' events' for k in wrong)}", name)
            return None
        if only_deletes(patterns):
            report.key_error(f"{name} cannot apply to a deleted item", name)
            return None
    return action.build(args, report.at(name), env)
