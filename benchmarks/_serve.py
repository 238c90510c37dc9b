"""Serve a WSGI app exactly as the Procfile's `web` line serves the project's.

The gunicorn flags are read from the Procfile itself (only the app, the bind address and the
access log's destination change), so a change of worker class, workers or threads there is
benchmarked as deployed, and baselines and project always run under identical flags.
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
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROJECT_APP = "webhooks:create_app()"
_DEFAULTED = re.compile(r"\$\{(\w+):-([^}]*)\}")


def web_args(app_spec: str, port: int) -> list[str]:
    """The Procfile web command for `app_spec`, bound to loopback, with $VARs expanded."""
    line = next(l for l in (ROOT / "Procfile").read_text().splitlines() if l.startswith("web:"))
    line = _DEFAULTED.sub(lambda m: os.environ.get(m.group(1), m.group(2)), line[4:])
    line = line.replace("$PORT", str(port))
    args = shlex.split(line)
    args[args.index(PROJECT_APP)] = app_spec
    bind = args.index("--bind") + 1
    args[bind] = f"127.0.0.1:{port}"
    args[0] = str(Path(sys.executable).parent / args[0])
    return args


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    name: str
    port: int
    proc: subprocess.Popen

    def stop(self) -> None:
        """SIGTERM the arbiter's process group: workers finish in-flight requests, then exit."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(25)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)


def start(name: str, app_spec: str, env: dict[str, str], log: Path) -> Server:
    """Start gunicorn and wait until the app answers GET /webhooks/prepr."""
    port = free_port()
    clean = {k: v for k, v in os.environ.items()
             if k not in ("CELERY_BROKER_URL", "REDIS_URL", "SENTRY_DSN", "PREPR_WEBHOOK_SECRETS")}
    with open(log, "ab") as out:  # the access log goes here, as it goes to stdout on a dyno
        proc = subprocess.Popen(web_args(app_spec, port), cwd=str(ROOT), env={**clean, **env},
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    server = Server(name, port, proc)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name}: gunicorn exited with {proc.returncode}; see {log}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/webhooks/prepr", timeout=1).read()
            return server
        except OSError:
            time.sleep(0.1)
    server.stop()
    raise TimeoutError(f"{name}: no answer on port {port} within 30 s; see {log}")
