"""`prepr-automation sandbox`: the Prepr stand-in alone (also `python -m sandbox`)."""
from __future__ import annotations

import json
import os
import secrets
import sys
from pathlib import Path
from typing import Any, Callable

import click

KEEPALIVE = 75  # seconds an idle keep-alive connection is kept open


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
          seed_file: str | Path | None = None, ready: Callable[[str], None] | None = None,
          latency_ms: int = 0, rate_limit: str | None = None, api: str = "both") -> None:
    """Serve under gunicorn until SIGINT or SIGTERM (graceful): one worker process with 16 threads,
    keep-alive; the content, faults and request log are that process's state. Not werkzeug's
    server: it closes the connection after every answer."""
    from gunicorn.app.base import BaseApplication

    token = resolve_token(token)
    announce = ready or (lambda u: print(f"Prepr sandbox on {u} (data in {Path(data_dir) / 'sandbox.sqlite3'})",
                                         file=sys.stderr, flush=True))

    class Sandbox(BaseApplication):
        def load_config(self) -> None:
            options = {"bind": [f"{host}:{port}"], "workers": 1, "worker_class": "gthread", "threads": 16,
                       "keepalive": KEEPALIVE, "graceful_timeout": 5, "loglevel": "warning",
                       "proc_name": "prepr-sandbox", "when_ready": lambda arbiter: announce(str(arbiter.LISTENERS[0])),
                       "worker_exit": _close_store}
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self) -> Any:  # in the worker, after the fork: the app's threads and database are its own
            from .app import create_app
            return create_app(data_dir, token, user_id=user_id, webhook_url=webhook_url,
                              webhook_secret=webhook_secret, seed_file=seed_file, latency_ms=latency_ms,
                              rate_limit=rate_limit, api=api)

    Sandbox().run()


def _close_store(arbiter: Any, worker: Any) -> None:
    app = getattr(worker, "wsgi", None)  # None when the app failed to load
    if app is not None:
        app.extensions["sandbox"]["store"].close()


@click.command("sandbox")
@click.option("--port", type=int, default=lambda: int(os.environ.get("SANDBOX_PORT", 8080)), show_default="8080",
              help="Port to listen on (0: any free port). Env SANDBOX_PORT.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--data-dir", default=lambda: os.environ.get("DATA_DIR", "var"), show_default="DATA_DIR or var",
              help="Where sandbox.sqlite3 lives.")
@click.option("--seed", "seed_file", type=click.Path(exists=True, dir_okay=False),
              help="Load this JSON seed (replacing the content) instead of the demo content.")
@click.option("--webhook-url", envvar="SANDBOX_WEBHOOK_URL", help="Receiver for signed webhooks.")
@click.option("--webhook-secret", envvar="SANDBOX_WEBHOOK_SECRET", help="Signing key for the webhooks.")
@click.option("--user-id", envvar="SANDBOX_USER_ID",
              help="Person id behind the token (performed_by of API writes).")
@click.option("--latency-ms", type=click.IntRange(0, 60_000), default=0, envvar="SANDBOX_LATENCY_MS",
              show_default=True, help="Remote mode: every API call takes this long, as Prepr across the internet.")
@click.option("--rate-limit", envvar="SANDBOX_RATE_LIMIT", metavar="WINDOWS",
              help="Remote mode: Prepr's windows per token, e.g. '35/second;800/minute'; 429 beyond any.")
@click.option("--api", type=click.Choice(["both", "publications", "content_items"]), default="both",
              envvar="SANDBOX_API", show_default=True,
              help="The REST dialect(s) served: the seeds' /publications, today's /content_items (Mutation API), or both.")
def sandbox_command(port: int, host: str, data_dir: str, seed_file: str | None, webhook_url: str | None,
                    webhook_secret: str | None, user_id: str | None, latency_ms: int, rate_limit: str | None,
                    api: str) -> None:
    """Serve a local stand-in for Prepr's REST and tracking APIs, with demo content."""
    if webhook_url and not webhook_secret:
        raise click.UsageError("--webhook-url needs --webhook-secret (SANDBOX_WEBHOOK_SECRET)")
    if seed_file:  # checked here: the app is built in gunicorn's worker, where an error is a boot failure
        try:
            json.loads(Path(seed_file).read_text())
        except ValueError as exc:
            raise click.BadParameter(f"not JSON: {exc}", param_hint="--seed") from None
    if rate_limit:  # checked here too, before gunicorn starts
        from limits import parse_many
        try:
            parse_many(rate_limit)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--rate-limit") from None
    serve(port, data_dir, host=host, user_id=user_id or os.environ.get("PREPR_AUTOMATION_USER_ID"),
          webhook_url=webhook_url, webhook_secret=webhook_secret, seed_file=seed_file,
          latency_ms=latency_ms, rate_limit=rate_limit, api=api,
          ready=lambda url: click.echo(f"Prepr sandbox listening on {url}", err=True))
