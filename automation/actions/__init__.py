"""The action registry, built from the Action classes: name -> class (its kinds, schema, build)."""
from __future__ import annotations

from .auto_tag import AutoTag
from .base import Action, BuildEnv, PlanContext
from .bulk import BulkDelete, BulkPut, TriggerWebhooks
from .channels import AssignChannels, RemoveChannels
from .tags import AddTags, RemoveTags
from .track import TrackEvent
from .update import Update

ACTIONS: dict[str, type[Action]] = {cls.name: cls for cls in (
    AddTags, RemoveTags, AutoTag, AssignChannels, RemoveChannels, Update, BulkPut, BulkDelete,
    TriggerWebhooks, TrackEvent)}

__all__ = ["Action", "BuildEnv", "PlanContext", "ACTIONS"]
