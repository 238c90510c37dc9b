"""What the end-to-end benchmarks share: their subprocesses (stopped however the run ends), the
Procfile's worker command, CPU accounting from /proc, and a sandbox started for them.
"""
from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import redis
import requests

from prepr_automation.processes import Supervisor

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
TOKEN = "bench-e2e-token"
USER_ID = "b3e2e000-0000-4000-8000-00000000a07a"   # the automation's user in the sandbox


class Processes(Supervisor):
    """Every subprocess a benchmark starts, each logging to a file; all stopped however it ends
    (prepr_automation.processes: own process group, parent-death signal, stopped at exit)."""

    def __init__(self, logs: Path) -> None:
        super().__init__(grace=20.0)
        self.logs = logs

    def start(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen:  # type: ignore[override]
        log = self.logs / f"{name}.log"
        with open(log, "ab") as out:
            proc = super().start(args, name=name, cwd=str(ROOT), env=env, stdout=out, stderr=subprocess.STDOUT)
        proc.log = log  # type: ignore[attr-defined]
        return proc


@contextmanager
def terminated_cleanly() -> Iterator[None]:
    """SIGTERM/SIGHUP end the run through `finally`, so no worker or sandbox is left behind; the
    `finally` that stops them must be inside this block (a repeated signal is then ignored)."""
    fired: list[int] = []

    def _exit(signum: int, _frame: object) -> None:
        if not fired:
            fired.append(signum)
            raise SystemExit(128 + signum)

    previous = {sig: signal.signal(sig, _exit) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def procfile_worker() -> str:
    return next(l for l in (ROOT / "Procfile").read_text().splitlines() if l.startswith("worker:"))


def worker_args(app: str, name: str, line: str | None = None) -> list[str]:
    """The Procfile's worker command (or `line`, written the same way) with `app` for `-A`, $VARs
    expanded, a node name of its own."""
    line = line or procfile_worker()
    line = re.sub(r"\$\{(\w+):-([^}]*)\}", lambda m: os.environ.get(m.group(1), m.group(2)), line[7:])
    args = shlex.split(line)
    args[args.index("-A") + 1] = app
    args[0] = str(BIN / args[0])
    return args + ["-n", f"{name}@%h"]


def concurrency(args: list[str]) -> int:
    flag = "--concurrency" if "--concurrency" in args else "-c"
    return int(args[args.index(flag) + 1]) if flag in args else os.cpu_count() or 1


def cpu_seconds(pgid: int) -> float:
    """User + system CPU of every live process in a process group (Linux /proc; 0 elsewhere)."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid:      # fields after the command: state ppid pgrp ... utime(11) stime(12)
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def redis_cpu(client: redis.Redis) -> float:
    info = client.info("cpu")
    return float(info.get("used_cpu_user", 0)) + float(info.get("used_cpu_sys", 0))


# -- the sandbox -----------------------------------------------------------------------------

@dataclass
class Sandbox:
    url: str
    proc: subprocess.Popen

    def admin(self, verb: str, path: str, body: object = None) -> Any:
        response = requests.request(verb, f"{self.url}/_sandbox/{path}", json=body,
                                    headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60)
        response.raise_for_status()
        return response.json()

    def requests_log(self) -> list[dict[str, Any]]:
        return self.admin("GET", "requests")


def start_sandbox(procs: Processes, data_dir: Path, *options: str) -> Sandbox:
    """`python -m sandbox` with `options` (e.g. remote mode's), once it answers."""
    port = free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PREPR_ACCESS_TOKEN": TOKEN}
    proc = procs.start("sandbox", [sys.executable, "-m", "sandbox", "--port", str(port), "--data-dir",
                                   str(data_dir), "--user-id", USER_ID, *options], env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the sandbox exited with {proc.returncode}; see {proc.log}")  # type: ignore[attr-defined]
        try:
            requests.get(f"{url}/health", timeout=1)
            return Sandbox(url, proc)
        except requests.RequestException:
            time.sleep(0.1)
    raise TimeoutError("the sandbox did not answer within 30 s")
