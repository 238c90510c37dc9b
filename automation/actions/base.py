"""What every action is: a name, the resource kinds it applies to, its marshmallow schema, and
`plan(ctx)` -> (ops for the item's Draft or planned calls, rendered values for the trace)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Sequence

from marshmallow import Schema, ValidationError, fields

from ..templates import render
from ..yamlsrc import Reporter


@dataclass
class PlanContext:
    """Everything an action may look at; all data, passed in by the caller of evaluate()."""

    item: dict
    envelope: dict
    resource: str  # publication | asset | person | other
    item_id: str | None
    locales: list[str]
    channels: Sequence[dict] | None  # None: no list at hand, channel refs stay as written
    template_context: dict
    rule_id: str = ""
    encode_filter: Callable[[dict], list] | None = None

    def render(self, value: Any) -> Any:
        return render(value, self.template_context)


class Action:
    """Subclasses are the registry (actions.ACTIONS): name, kinds, argument schema and build."""

    name: ClassVar[str]
    kinds: ClassVar[frozenset[str] | None] = None  # None: any event (bulk, tracking)
    per_item: ClassVar[bool] = True  # contributes to the item's one PUT
    args: ClassVar[type[Schema] | None] = None  # marshmallow schema of the arguments (None: free mapping)
    short: ClassVar[str | None] = None  # `name: [..]` is short for `name: {short: [..]}`

    @classmethod
    def build(cls, args: Any, report: Reporter, env: "BuildEnv") -> "Action | None":
        """Check the arguments as written in the rule file; None (errors reported) if they fail."""
        raise NotImplementedError

    def plan(self, ctx: PlanContext) -> tuple[list, dict]:
        raise NotImplementedError

    def needs(self, resource: str) -> frozenset[str]:
        """Top-level resource fields this action reads (the fetch planner asks for them)."""
        return frozenset()


class StrictBool(fields.Boolean):
    """Only YAML true/false: 1, "yes" and "on" are errors, not silently booleans."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


class StrictInt(fields.Integer):
    def __init__(self, **kw: Any) -> None:
        super().__init__(strict=True, **kw)


class StringList(fields.List):
    def __init__(self, **kw: Any) -> None:
        super().__init__(fields.String(), **kw)


def load(schema: Schema, data: Any, report: Reporter) -> dict | None:
    """marshmallow load; every message reported at its key path (unknown keys at the key)."""
    loaded, ok = load_partial(schema, data, report)
    return loaded if ok else None


def load_partial(schema: Schema, data: Any, report: Reporter) -> tuple[dict, bool]:
    """Like load, but also hands back the fields that were valid, so later checks still run and
    one pass reports every error."""
    try:
        return schema.load(data), True
    except ValidationError as exc:
        report_messages(exc.messages, report)
        valid = exc.valid_data if isinstance(exc.valid_data, dict) else {}
        return valid, False


def report_messages(messages: Any, report: Reporter, path: tuple = ()) -> None:
    if isinstance(messages, dict):
        for key, sub in messages.items():
            if key == "_schema":
                report_messages(sub, report, path)
            else:
                report_messages(sub, report, path + (key,))
    elif isinstance(messages, list):
        for message in messages:
            if isinstance(message, (dict, list)):
                report_messages(message, report, path)
            elif message == "Unknown field.":
                report.key_error("unknown key", *path)
            else:
                report.error(_tidy(str(message)), *path)
    else:
        report.error(_tidy(str(messages)), *path)


def _tidy(message: str) -> str:
    """marshmallow's 'Not a valid string.' -> 'not a valid string' to match the other messages."""
    message = message.rstrip(".")
    return message[:1].lower() + message[1:]


@dataclass
class BuildEnv:
    """Load-time context: where the rule file is (for vocabulary_file) and shared services."""

    source_dir: Path
    vocab_files: set = field(default_factory=set)  # resolved paths, excluded from rule loading
    encode_filter: Callable[[dict], list] | None = None
    dialect: str | None = None  # PREPR_API when it names one: what the API has no equivalent for is an error


def load_short(schema: Schema, args: Any, key: str, report: Reporter) -> tuple[dict | None, Reporter]:
    """`add_tags: [a, b]` is short for `add_tags: {tags: [a, b]}`; errors of the short form
    point into the list the user wrote. Returns the data and the reporter for `key`'s value."""
    if isinstance(args, list):
        return load(schema, {key: args}, _Strip(report, key)), report
    if not isinstance(args, dict):
        report.error(f"expected a list of {key} or a mapping with '{key}'")
        return None, report
    return load(schema, args, report), report.at(key)


class _Strip(Reporter):
    def __init__(self, report: Reporter, key: str) -> None:
        super().__init__(report.source, report.base)
        self.key = key

    def error(self, message: str, *parts: Any, at_key: bool = False) -> None:
        super().error(message, *(parts[1:] if parts[:1] == (self.key,) else parts), at_key=at_key)
