"""The action registry: name -> builder. Each action module holds its schema and its plan."""
from __future__ import annotations

from typing import Any, Callable

from ..yamlsrc import Reporter
from . import auto_tag, bulk, channels, tags, track, update
from .base import Action, BuildEnv, PlanContext

Builder = Callable[[Any, Reporter, BuildEnv], "Action | None"]

BUILDERS: dict[str, Builder] = {
    "add_tags": tags.build_add,
    "remove_tags": tags.build_remove,
    "auto_tag": auto_tag.build,
    "assign_channels": channels.build_assign,
    "remove_channels": channels.build_remove,
    "update": update.build,
    "bulk_put": bulk.build_put,
    "bulk_delete": bulk.build_delete,
    "trigger_webhooks": bulk.build_trigger,
    "track_event": track.build,
}
KINDS: dict[str, frozenset[str] | None] = {
    "add_tags": tags.TAGGABLE, "remove_tags": tags.TAGGABLE, "auto_tag": tags.TAGGABLE,
    "assign_channels": channels.ChannelAction.kinds, "remove_channels": channels.ChannelAction.kinds,
    "update": update.Update.kinds, "bulk_put": None, "bulk_delete": None, "trigger_webhooks": None,
    "track_event": None,
}

__all__ = ["Action", "BuildEnv", "PlanContext", "BUILDERS", "KINDS"]
