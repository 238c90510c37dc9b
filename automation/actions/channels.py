"""assign_channels / remove_channels: publication channels by id, resolved from id, slug or name
against the channel list the caller passes in (the engine itself never asks Prepr)."""
from __future__ import annotations

import re
from typing import Any, Sequence

from ..draft import ChannelOp
from ..errors import ActionError
from ..fields import ref_keys
from ..templates import compile_value
from ..text import fold
from ..yamlsrc import Reporter
from .base import Action, BuildEnv, PlanContext, StringList, load_short

from marshmallow import Schema, validate

_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)


class ChannelArgs(Schema):
    channels = StringList(required=True, validate=validate.Length(min=1))


def resolve_channel(ref: str, channels: Sequence[dict]) -> str:
    target = fold(ref)
    for channel in channels:  # an entry without an id cannot be assigned: skipped
        if isinstance(channel, dict) and channel.get("id") not in (None, "") \
                and any(fold(k) == target for k in ref_keys(channel)):
            return str(channel["id"])
    if _UUID.match(ref):
        return ref  # an id the list does not show (or no list given): trust it
    if not channels:
        raise ActionError(f"cannot assign channel '{ref}': this Prepr environment has no channels "
                          "(channels are legacy in today's Prepr, kept for Prepr for Radio)")
    known = ", ".join(sorted({str(c.get("slug") or c.get("name") or c.get("id"))
                              for c in channels if isinstance(c, dict)})) or "none"
    raise ActionError(f"unknown channel '{ref}' (known: {known})")


class ChannelAction(Action):
    kinds = frozenset({"publication"})
    args = ChannelArgs
    short = "channels"
    add: bool

    def __init__(self, channels: list) -> None:
        self.channels = channels

    @classmethod
    def build(cls, args: Any, report: Reporter, env: BuildEnv) -> "ChannelAction | None":
        data, at = load_short(ChannelArgs(), args, "channels", report)
        if data is None:
            return None
        return cls(compile_value(data["channels"], at))

    def plan(self, ctx: PlanContext) -> tuple[list, dict]:
        refs = [str(r).strip() for r in ctx.render(self.channels) if str(r).strip()]
        if ctx.channels is None:  # no channel list at hand (offline explain): refs as written
            return [ChannelOp(self.add, tuple(refs))], {"channels": {r: "unresolved" for r in refs}}
        ids = [resolve_channel(r, ctx.channels) for r in refs]
        return [ChannelOp(self.add, tuple(ids))], {"channels": dict(zip(refs, ids))}

    def needs(self, resource: str) -> frozenset[str]:
        return frozenset({"channels"})



class AssignChannels(ChannelAction):
    name, add = "assign_channels", True


class RemoveChannels(ChannelAction):
    name, add = "remove_channels", False
