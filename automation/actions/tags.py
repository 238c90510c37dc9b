"""add_tags / remove_tags: on the item's tag field in each of its locales (publications), or the
resource's top-level tags (assets, persons). Names may be templates."""
from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, validate

from ..draft import TagOp
from ..errors import ActionError
from ..templates import compile_value
from ..yamlsrc import Reporter
from ..resources import KINDS
from .base import Action, BuildEnv, PlanContext, StringList, load_short


class TagArgs(Schema):
    tags = StringList(required=True, validate=validate.Length(min=1))
    tag_field = fields.String(load_default="tags", validate=validate.Length(min=1))
    locales = StringList(load_default=None)


def target_locales(ctx: PlanContext, wanted: list[str] | None) -> list[str]:
    """The item's locales (or the wanted ones it has); an item without locales is an error."""
    locales = [loc for loc in ctx.locales if wanted is None or loc in wanted]
    if not locales:
        raise ActionError("the item has no locales to tag" if wanted is None
                          else f"the item has none of the locales {wanted}")
    return locales


class TagAction(Action):
    kinds = KINDS
    args = TagArgs
    short = "tags"
    add: bool

    def __init__(self, tags: list, tag_field: str, locales: list | None) -> None:
        self.tags, self.tag_field, self.locales = tags, tag_field, locales

    @classmethod
    def build(cls, args: Any, report: Reporter, env: BuildEnv) -> "TagAction | None":
        data, at = load_short(TagArgs(), args, "tags", report)
        if data is None:
            return None
        return cls(compile_value(data["tags"], at), data["tag_field"], data["locales"])

    def plan(self, ctx: PlanContext) -> tuple[list, dict]:
        names = [str(n).strip() for n in ctx.render(self.tags) if str(n).strip()]
        if ctx.resource != "publication":
            return [TagOp(self.add, None, self.tag_field, tuple(names))], {"tags": names}
        locales = target_locales(ctx, self.locales)
        ops = [TagOp(self.add, loc, self.tag_field, tuple(names)) for loc in locales]
        return ops, {"tags": names, "locales": locales, "tag_field": self.tag_field}

    def needs(self, resource: str) -> frozenset[str]:
        return frozenset({"items", "locales"}) if resource == "publication" else frozenset({self.tag_field})



class AddTags(TagAction):
    name, add = "add_tags", True


class RemoveTags(TagAction):
    name, add = "remove_tags", False
