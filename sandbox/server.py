"""Running the sandbox: a threaded werkzeug server (starts in well under a second)."""
from __future__ import annotations

import logging
import os
import secrets
import sys
from pathlib import Path
from typing import Callable

import time

from werkzeug.serving import WSGIRequestHandler, make_server

from .app import create_app


class _StampingHandler(WSGIRequestHandler):
    """Stamps each request when its request line arrives, before any app work, so the request
    log's timestamps (used to check rate limits) are as close to the wire as possible."""

    def parse_request(self) -> bool:
        self.arrived = time.time()
        return super().parse_request()

    def make_environ(self):  # type: ignore[override]
        environ = super().make_environ()
        environ["sandbox.arrived"] = getattr(self, "arrived", time.time())
        return environ


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
    """Serve until interrupted. `ready(url)` is called once the socket is listening."""
    token = resolve_token(token)
    app = create_app(data_dir, token, user_id=user_id, webhook_url=webhook_url,
                     webhook_secret=webhook_secret, seed_file=seed_file)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = make_server(host, port, app, threaded=True, request_handler=_StampingHandler)
    url = f"http://{host}:{server.server_port}"
    (ready or (lambda u: print(f"Prepr sandbox on {u} (data in {Path(data_dir) / 'sandbox.sqlite3'})",
                               file=sys.stderr, flush=True)))(url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
