"""bulk_put, bulk_delete, trigger_webhooks: calls on many publications chosen by a Prepr filter.

The filter is the rule condition syntax restricted to what Prepr can filter on (no `matches`,
no `changed`, no resource paths), so it can be sent verbatim: it is encoded to Prepr's query
form by prepr.filters.encode_filter. These run on the `bulk` queue; the worker lists what the
filter matches, refuses above `max_items`, and backs up before bulk_put / bulk_delete.
"""
from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, validate

from ..calls import PlannedCall
from ..conditions import compile_condition
from ..errors import ActionError
from ..events import check_pattern, resource_kind
from ..templates import compile_value
from ..yamlsrc import Reporter
from .base import Action, BuildEnv, PlanContext, StrictInt, load_partial

class BulkPutArgs(Schema):
    filter = fields.Dict(required=True)
    set = fields.Dict(required=True, validate=validate.Length(min=1))
    max_items = StrictInt(load_default=100, validate=validate.Range(min=1))


class BulkDeleteArgs(Schema):
    filter = fields.Dict(required=True)
    max_items = StrictInt(load_default=100, validate=validate.Range(min=1))


class TriggerArgs(Schema):
    filter = fields.Dict(required=True)
    event = fields.String(required=True)


class Bulk(Action):
    kinds = None
    per_item = False
    path: str

    def __init__(self, filter_: dict, body: Any, max_items: int | None) -> None:
        self.filter, self.body, self.max_items = filter_, body, max_items

    @classmethod
    def build(cls, args: Any, report: Reporter, env: BuildEnv) -> "Bulk | None":
        assert cls.args is not None
        data, ok = load_partial(cls.args(), args, report)
        if isinstance(data.get("filter"), dict):
            ok = check_filter(args["filter"], report.at("filter"), env) and ok
        ok = cls.check(data, report) and ok
        if not ok:
            return None
        filter_ = compile_value(args["filter"], report.at("filter"))
        return cls(filter_, cls.body_of(args, data, report), data.get("max_items"))

    @classmethod
    def body_of(cls, args: dict, data: dict, report: Reporter) -> Any:
        return compile_value(args["set"], report.at("set")) if "set" in data else None

    @classmethod
    def check(cls, data: dict, report: Reporter) -> bool:
        return True

    def plan(self, ctx: PlanContext) -> tuple[list, dict]:
        mapping = ctx.render(self.filter)
        body = ctx.render(self.body)
        params = None
        if ctx.encode_filter is not None:
            try:
                params = tuple((str(k), str(v)) for k, v in ctx.encode_filter(mapping))
            except Exception as exc:  # UnsupportedFilter or a rendered value Prepr cannot take
                raise ActionError(f"filter cannot be sent to Prepr: {exc}") from None
        meta: dict = {"filter": mapping}
        if self.max_items is not None:
            meta["max_items"] = self.max_items
        call = PlannedCall("POST", self.path, params, body, "rest", "bulk", (ctx.rule_id,),
                           self.name, meta=meta)
        return [call], {"filter": mapping, "body": body, "params": [list(p) for p in params or ()]}


def check_filter(value: dict, report: Reporter, env: BuildEnv) -> bool:
    """Reject what Prepr cannot filter on; then let the shared encoder have its say."""
    before = report.count
    compile_condition(value, report, prepr_only=True)
    if report.count == before and env.encode_filter is not None:
        try:
            env.encode_filter(value)
        except Exception as exc:
            report.error(f"filter cannot be sent to Prepr: {exc}")
    return report.count == before


class BulkPut(Bulk):
    name, path, args = "bulk_put", "/publications/bulk/put", BulkPutArgs


class BulkDelete(Bulk):
    name, path, args = "bulk_delete", "/publications/bulk/delete", BulkDeleteArgs


class TriggerWebhooks(Bulk):
    name, path, args = "trigger_webhooks", "/publications/bulk/webhooks", TriggerArgs

    @classmethod
    def build(cls, args: Any, report: Reporter, env: BuildEnv) -> "Bulk | None":
        if env.dialect == "content_items":  # today's Mutation API has no bulk webhooks (SPEC §9)
            report.key_error("trigger_webhooks has no equivalent in the content_items dialect of Prepr's API "
                         "(PREPR_API=content_items): Prepr's Mutation API has no bulk webhooks")
            return None
        return super().build(args, report, env)

    @classmethod
    def body_of(cls, args: dict, data: dict, report: Reporter) -> Any:
        return {"event": data["event"]}

    @classmethod
    def check(cls, data: dict, report: Reporter) -> bool:
        if "event" not in data:
            return True
        problem = check_pattern(data["event"])
        if problem or resource_kind(data["event"]) != "publication":
            report.error(problem or "trigger_webhooks sends content_item events", "event")
            return False
        return True
