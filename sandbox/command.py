"""`prepr-automation sandbox`: the Prepr stand-in alone (also `python -m sandbox`)."""
from __future__ import annotations

import os

import click


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
def sandbox_command(port: int, host: str, data_dir: str, seed_file: str | None, webhook_url: str | None,
                    webhook_secret: str | None, user_id: str | None) -> None:
    """Serve a local stand-in for Prepr's REST and tracking APIs, with demo content."""
    from .server import serve

    if webhook_url and not webhook_secret:
        raise click.UsageError("--webhook-url needs --webhook-secret (SANDBOX_WEBHOOK_SECRET)")
    serve(port, data_dir, host=host, user_id=user_id or os.environ.get("PREPR_AUTOMATION_USER_ID"),
          webhook_url=webhook_url, webhook_secret=webhook_secret, seed_file=seed_file,
          ready=lambda url: click.echo(f"Prepr sandbox listening on {url}", err=True))
