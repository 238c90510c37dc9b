"""The loaded rule set: typed, frozen rules and the event index the receiver and worker query."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from .conditions import Group, changed_fields, needs as condition_needs
from .events import EventIndex


@dataclass(frozen=True)
class Rule:
    id: str
    on: tuple[str, ...]
    actions: tuple[Any, ...]
    when: Group | None = None
    description: str = ""
    enabled: bool = True
    disabled_reason: str | None = None
    dry_run: bool = False
    throttle_seconds: int | None = None
    stop: bool = False
    file: str = ""
    line: int = 0
    col: int = 0
    index: int = 0  # position in its file's `rules`
    # what condition_needs/needs found per resource: a rule never changes, every event asks
    _needs: dict = field(default_factory=dict, init=False, compare=False, repr=False)

    def condition_needs(self, resource: str) -> frozenset[str]:
        key = ("when", resource)
        if key not in self._needs:
            self._needs[key] = condition_needs(self.when, resource) if self.when is not None else frozenset()
        return self._needs[key]

    def needs(self, resource: str) -> frozenset[str]:
        """Top-level resource fields this rule reads: its conditions and its actions."""
        key = ("all", resource)
        if key not in self._needs:
            out = set(self.condition_needs(resource))
            for action in self.actions:
                out |= action.needs(resource)
            self._needs[key] = frozenset(out)
        return self._needs[key]

    def to_json(self) -> dict:
        return {"id": self.id, "description": self.description, "on": list(self.on),
                "enabled": self.enabled, "disabled_reason": self.disabled_reason,
                "dry_run": self.dry_run, "throttle_seconds": self.throttle_seconds, "stop": self.stop,
                "actions": [a.name for a in self.actions], "file": self.file, "line": self.line}


@dataclass(frozen=True)
class RuleSet:
    """All rules in load order (files sorted by path, rules in file order); only enabled ones are
    indexed. `rules_for` and the other per-event questions are dictionary look-ups after the
    first call per name."""

    rules: tuple[Rule, ...]
    files: tuple[str, ...]
    encode_filter: Callable[[dict], list] | None = field(default=None, compare=False, repr=False)
    cases: tuple = field(default=(), compare=False, repr=False)  # rule tests (automation.ruletests)

    def __post_init__(self) -> None:
        active = tuple(r for r in self.rules if r.enabled)
        object.__setattr__(self, "_active", active)
        object.__setattr__(self, "_index", EventIndex([(i, r.on) for i, r in enumerate(active)]))
        object.__setattr__(self, "_per_event", {})  # (question, event name) -> answer
        object.__setattr__(self, "_by_id", {r.id: r for r in self.rules})

    @property
    def enabled(self) -> tuple[Rule, ...]:
        return self._active  # type: ignore[attr-defined]

    def listens_to(self, event: str) -> bool:
        return bool(self._index.lookup(event))  # type: ignore[attr-defined]

    def rules_for(self, event: str) -> tuple[Rule, ...]:
        return self._answer("rules", event, lambda: tuple(
            self._active[i] for i in self._index.lookup(event)))  # type: ignore[attr-defined]

    def _answer(self, question: str, event: str, compute: Callable[[], Any]) -> Any:
        """What the rule set says about one event name, worked out once (bounded: names are input)."""
        cache = self._per_event  # type: ignore[attr-defined]
        key = (question, event)
        if key not in cache:
            if len(cache) >= 4096:
                return compute()
            cache[key] = compute()
        return cache[key]

    def needs_channels(self, event: str) -> bool:
        """Does a rule for this event name channels (so Prepr's channel list is needed)?"""
        return self._answer("channels", event, lambda: any(
            action.name in ("assign_channels", "remove_channels")
            for rule in self.rules_for(event) for action in rule.actions))

    def get(self, rule_id: str) -> Rule | None:
        return self._by_id.get(rule_id)  # type: ignore[attr-defined]

    def changed_fields(self, event: str) -> list:
        def compute() -> list:
            seen: dict[str, Any] = {}
            for rule in self.rules_for(event):
                for f in changed_fields(rule.when):
                    seen.setdefault(f.name, f)
            return list(seen.values())
        return list(self._answer("changed", event, compute))

    def fetch_plan(self, envelope: dict, *, snapshot: dict | None = None, write_fields: tuple = ()):
        from .planner import fetch_plan
        return fetch_plan(self, envelope, snapshot=snapshot, write_fields=write_fields)

    def summary(self) -> dict:
        return {"files": len(self.files), "rules": len(self.rules), "enabled": len(self.enabled)}
