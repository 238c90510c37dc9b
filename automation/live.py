"""A rule set that follows its files: reloaded when they change, never half-loaded.

Processes that run for days (web, worker) see edits without a restart. An edit that does not
validate is logged and ignored: the last good rule set stays in force, so a bad file can fail
`validate` and the deploy, but never a running process.
"""
from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

from .errors import RuleSetError
from .loader import load_rules
from .model import RuleSet

log = logging.getLogger("automation.live")


def fingerprint(path: str) -> tuple:
    root = Path(path)
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.suffix in (".yaml", ".yml"))
    return tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in files)


class LiveRuleSet:
    def __init__(self, path: str, check_every: float = 5.0) -> None:
        self.path = path
        self.check_every = check_every
        self._rules: RuleSet | None = None
        self._print: tuple = ()
        self._checked = float("-inf")
        self._errors: list[str] = []
        self.loaded_at: float | None = None  # wall-clock time of the last successful (re)load
        self.failed_at: float | None = None  # when the files' current, invalid state was first read
        self._failed_print: tuple = ()
        self._lock = threading.Lock()

    def current(self) -> RuleSet | None:
        """The rule set in force (None only if no valid set was ever loaded)."""
        now = time.monotonic()
        # One thread checks (and reloads, if files changed); the others carry on with the set in
        # force instead of waiting, so a reload never stalls a request.
        if now - self._checked >= self.check_every and self._lock.acquire(blocking=self._rules is None):
            try:
                if now - self._checked >= self.check_every:
                    self._checked = now
                    self._reload()
            finally:
                self._lock.release()
        return self._rules

    def _reload(self) -> None:
        print_: tuple = ()
        try:
            print_ = fingerprint(self.path)
            if self._rules is not None and print_ == self._print:
                return
            self._rules, self._print, self._errors = load_rules(self.path), print_, []
            self.loaded_at, self.failed_at, self._failed_print = time.time(), None, ()
            log.info("rule set loaded from %s: %s", self.path, self._rules.summary())
        except Exception as exc:  # noqa: BLE001 - whatever a file does, the set in force stays
            self._errors = [str(e) for e in getattr(exc, "errors", [f"{type(exc).__name__}: {exc}"])]
            if self.failed_at is None or print_ != self._failed_print:  # a new bad edit, not a re-check
                self.failed_at, self._failed_print = time.time(), print_
            if not isinstance(exc, (RuleSetError, OSError)):
                log.exception("rule loader failed on %s", self.path)
            log.error("rule set in %s not loaded (%d error(s)); first: %s%s", self.path, len(self._errors),
                      self._errors[0], "; keeping the previous rule set" if self._rules else "")

    def listens_to(self, event: str) -> bool:
        """With no valid rule set at all, every event is queued: the worker waits for valid rules."""
        rules = self.current()
        return True if rules is None else rules.listens_to(event)

    @property
    def errors(self) -> list[str]:
        """The errors of the last edit that did not validate (empty once a valid edit loads)."""
        return list(self._errors)

    @property
    def status(self) -> dict[str, Any]:
        rules = self.current()
        status: dict[str, Any] = {"path": self.path, "loaded": rules is not None}
        if rules is not None:
            status.update(rules.summary())
        if self._errors:
            status["errors"] = len(self._errors)
            status["first_error"] = self._errors[0]
        return status
