"""update: any PUT body fragment, templated; merged into the item's one PUT, only what differs."""
from __future__ import annotations

from typing import Any

from ..draft import MergeOp
from ..errors import ActionError
from ..templates import WHOLE, compile_value, item_keys
from ..yamlsrc import Reporter
from ..resources import KINDS
from .base import Action, BuildEnv, PlanContext


class Update(Action):
    name = "update"
    kinds = KINDS

    def __init__(self, fragment: dict) -> None:
        self.fragment = fragment
        self._needs = frozenset(fragment) | item_keys(fragment)

    def plan(self, ctx: PlanContext) -> tuple[list, dict]:
        rendered = ctx.render(self.fragment)
        if not isinstance(rendered, dict):
            raise ActionError("update must render to a mapping")
        return [MergeOp(rendered)], {"fragment": rendered}

    def needs(self, resource: str) -> frozenset[str]:
        return self._needs if WHOLE not in self._needs else frozenset({WHOLE})

    @classmethod
    def build(cls, args: Any, report: Reporter, env: BuildEnv) -> "Update | None":
        if not isinstance(args, dict) or not args:
            report.error("expected a mapping: the PUT body fragment to send")
            return None
        for key in READ_ONLY:
            if key in args:
                report.key_error(f"'{key}' cannot be updated", key)
                return None
        return cls(compile_value(args, report))


READ_ONLY = ("id", "created_on", "changed_on")
