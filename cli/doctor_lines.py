"""One line of `prepr-automation doctor`: a check that holds (✓) or fails (✗, with its fix)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Line:
    ok: bool
    what: str
    fix: str = ""

    def __str__(self) -> str:
        if self.ok:
            return f"✓ {self.what}"
        return f"✗ {self.what}" + (f" — {self.fix}" if self.fix else "")


def good(what: str) -> Line:
    return Line(True, what)


def bad(what: str, fix: str) -> Line:
    return Line(False, what, fix)
