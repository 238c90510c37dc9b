"""Child processes that never outlive the process that started them: dev, the tests and the
benchmarks (and the embedded Redis of a one-off command) start theirs here.

Why each piece:
- every child leads its own process group (a new session), so a Ctrl-C typed in the terminal,
  or a SIGHUP when it closes, reaches the parent alone: the parent then stops its children in
  order (last started first), instead of all of them dying at once half-way through a write;
- a stop signals the child (gunicorn and celery then stop their own workers gracefully), waits,
  and finally kills whatever is left in its group, so no grandchild survives either;
- on Linux each child asks the kernel for SIGTERM should its parent die without cleaning up
  (SIGKILL, a segfault): prctl(PR_SET_PDEATHSIG), the only hook that survives those.
  The signal follows the *thread* that started the child, so start children from a thread that
  lives as long as they should (the main thread, in practice).
"""
from __future__ import annotations

import atexit
import ctypes
import os
import signal
import subprocess
import sys
import weakref
from typing import Any, Callable, Sequence

_PR_SET_PDEATHSIG = 1
_live: "weakref.WeakSet[Supervisor]" = weakref.WeakSet()


try:
    _prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None
except (OSError, AttributeError):
    _prctl = None  # the atexit and signal handlers still stop children


def _die_with_parent() -> None:
    """Runs in the child between fork and exec: SIGTERM when the parent goes."""
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


class Supervisor:
    """The children of one owner; close() (also run at exit) stops every one still running."""

    def __init__(self, grace: float = 20.0) -> None:
        self.grace = grace
        self.children: list[subprocess.Popen] = []
        self.owner = os.getpid()  # a forked copy of this object (gunicorn, billiard) stops nothing
        _live.add(self)

    def start(self, args: Sequence[str], *, name: str | None = None, **popen: Any) -> subprocess.Popen:
        """Popen(args, **popen) in a new session, tied to this process's life."""
        popen.setdefault("preexec_fn", _die_with_parent if _prctl is not None else None)
        proc = subprocess.Popen(list(args), start_new_session=True, **popen)
        proc.name = name or os.path.basename(args[0])  # type: ignore[attr-defined]
        self.children.append(proc)
        return proc

    def adopt(self, proc: subprocess.Popen) -> subprocess.Popen:
        """A child started elsewhere (in its own session) that this supervisor must stop too."""
        self.children.append(proc)
        return proc

    def exited(self) -> subprocess.Popen | None:
        """The first child that has ended on its own, if any."""
        return next((child for child in self.children if child.poll() is not None), None)

    def stop(self, proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float | None = None) -> None:
        """Signal the child, wait up to `timeout` (default: grace), then kill its whole group."""
        if proc.poll() is None:
            _signal(proc, sig, group=False)
            try:
                proc.wait(self.grace if timeout is None else timeout)
            except subprocess.TimeoutExpired:
                pass
        _signal(proc, signal.SIGKILL, group=True)  # the child if still there, and any straggler
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            pass

    def close(self) -> None:
        """Stop every child, last started first; a no-op in a forked copy."""
        if os.getpid() != self.owner:
            return
        while self.children:
            self.stop(self.children.pop())

    def __enter__(self) -> "Supervisor":
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _signal(proc: subprocess.Popen, sig: int, group: bool) -> None:
    try:
        if group:
            os.killpg(proc.pid, sig)
        elif proc.poll() is None:
            proc.send_signal(sig)
    except (ProcessLookupError, PermissionError):
        pass


def exit_on_signals(signals: Sequence[int] = (signal.SIGTERM, signal.SIGHUP)) -> None:
    """Turn these signals into SystemExit where nothing else handles them, so `finally:` blocks
    and atexit (which stop children) run; Python's default for them is to die on the spot."""
    def leave(signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)

    for sig in signals:
        try:
            if signal.getsignal(sig) in (signal.SIG_DFL, None):
                signal.signal(sig, leave)
        except ValueError:
            return  # not the main thread: the owner of the main thread decides


def on_signals(handler: Callable[[int], None],
               signals: Sequence[int] = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)) -> None:
    """Call handler(signum) for each of these signals (for a parent that stops in its own loop)."""
    for sig in signals:
        signal.signal(sig, lambda signum, _frame: handler(signum))


@atexit.register
def _close_all() -> None:
    for supervisor in list(_live):
        supervisor.close()

