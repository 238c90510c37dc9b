"""track_event: one POST to the tracking API's /events (a customer did something with an item)."""
from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, validate

from ..calls import PlannedCall
from ..templates import compile_value
from ..yamlsrc import Reporter
from .base import Action, BuildEnv, PlanContext, load

UTM = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")


class TrackArgs(Schema):
    label = fields.String(required=True, validate=validate.Length(min=1))
    customer = fields.Raw(required=True)
    content_item = fields.String()
    locale = fields.String()
    timestamp = fields.Raw()
    utm_source = fields.String()
    utm_medium = fields.String()
    utm_campaign = fields.String()
    utm_term = fields.String()
    utm_content = fields.String()


class TrackEvent(Action):
    name = "track_event"
    kinds = None
    per_item = False
    args = TrackArgs

    def __init__(self, args: dict) -> None:
        self.args = args

    def plan(self, ctx: PlanContext) -> tuple[list, dict]:
        body = ctx.render(self.args)
        if "content_item" not in body and ctx.resource == "publication" and ctx.item_id:
            body["content_item"] = ctx.item_id  # default: the event's own item
        if "timestamp" not in body:
            body["timestamp"] = int(ctx.template_context["now"].timestamp())
        call = PlannedCall("POST", "/events", None, body, "tracking", "celery", (ctx.rule_id,),
                           "track_event")
        return [call], {"body": body}

    @classmethod
    def build(cls, args: Any, report: Reporter, env: BuildEnv) -> "TrackEvent | None":
        data = load(TrackArgs(), args, report)
        if data is None:
            return None
        customer = data["customer"]
        if not isinstance(customer, (str, dict)) or not customer:
            report.error("expected a customer id (string) or a mapping such as {id: ...}", "customer")
            return None
        return cls(compile_value(dict(args), report))
