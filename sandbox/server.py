"""Running the sandbox: gunicorn with threads in one process (starts in well under a second)."""
from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path
from typing import Callable

from .app import create_app


def resolve_token(token: str | None, echo: Callable[[str], None] = print) -> str:
    """PREPR_ACCESS_TOKEN, or a fresh one that is printed once so the user can copy it."""
    token = token or os.environ.get("PREPR_ACCESS_TOKEN")
    if token:
        return token
    token = "sandbox-" + secrets.token_urlsafe(24)
    echo(f"No PREPR_ACCESS_TOKEN set; this sandbox accepts: {token}")
    return token


def serve(port: int, data_dir: str | Path, *, host: str = "127.0.0.1", token: str | None = None,
          user_id: str | None = None, webhook_url: str | None = None, webhook_secret: str | None = None,
          seed_file: str | Path | None = None, ready: Callable[[str], None] | None = None) -> None:
    """Serve until interrupted. `ready(url)` is called once the socket is listening.

    gunicorn, one process (the content, faults and request log are that process's state) with
    threads, and long keep-alive so clients reuse connections as they do with Prepr. The app is
    built in the serving process, after the fork, so its webhook thread lives there.
    """
    from gunicorn.app.base import BaseApplication

    token = resolve_token(token)
    announce = ready or (lambda u: print(f"Prepr sandbox on {u} (data in {Path(data_dir) / 'sandbox.sqlite3'})",
                                         file=sys.stderr, flush=True))

    class Sandbox(BaseApplication):
        def load_config(self) -> None:
            for key, value in {"bind": f"{host}:{port}", "workers": 1, "worker_class": "gthread",
                               "threads": 16, "keepalive": 75, "graceful_timeout": 1, "timeout": 120,
                               "loglevel": "warning", "accesslog": None,
                               "when_ready": lambda server: announce(_url(server, host))}.items():
                self.cfg.set(key, value)

        def load(self):  # type: ignore[no-untyped-def]
            return create_app(data_dir, token, user_id=user_id, webhook_url=webhook_url,
                              webhook_secret=webhook_secret, seed_file=seed_file)

    Sandbox().run()


def _url(server: object, host: str) -> str:
    listener = server.LISTENERS[0]  # type: ignore[attr-defined]
    return f"http://{host}:{listener.sock.getsockname()[1]}"
