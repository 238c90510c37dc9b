"""Validation errors with their place in the rule file, so `validate` can point at the exact key."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable


@dataclass(frozen=True, order=True)
class RuleError:
    """One problem in a rule file: `file:line:col: key.path: message` (line and col 1-based)."""

    file: str
    line: int
    col: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path else ""
        return f"{self.file}:{self.line}:{self.col}: {where}{self.message}"

    def to_json(self) -> dict:
        return {"file": self.file, "line": self.line, "col": self.col, "path": self.path,
                "message": self.message}


class RuleSetError(Exception):
    """A rule set failed validation; it carries every error, sorted, and is never half-loaded."""

    def __init__(self, errors: Iterable[RuleError]) -> None:
        self.errors: list[RuleError] = sorted(set(errors))
        super().__init__("\n".join(str(e) for e in self.errors))


class ActionError(Exception):
    """An action could not be planned for this event (bad template, unknown channel...).

    Raised inside the engine and turned into a rule error in the Evaluation, never let out.
    """
