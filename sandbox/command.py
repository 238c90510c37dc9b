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
@click.option("--latency-ms", type=click.IntRange(0, 60_000), default=0, envvar="SANDBOX_LATENCY_MS",
              show_default=True, help="Remote mode: every API call takes this long, as Prepr across the internet.")
@click.option("--rate-limit", envvar="SANDBOX_RATE_LIMIT", metavar="WINDOWS",
              help="Remote mode: Prepr's windows per token, e.g. '35/second;800/minute'; 429 beyond any.")
def sandbox_command(port: int, host: str, data_dir: str, seed_file: str | None, webhook_url: str | None,
                    webhook_secret: str | None, user_id: str | None, latency_ms: int, rate_limit: str | None) -> None:
    """Serve a local stand-in for Prepr's REST and tracking APIs, with demo content."""
    from limits import parse_many

    from .server import serve

    if webhook_url and not webhook_secret:
        raise click.UsageError("--webhook-url needs --webhook-secret (SANDBOX_WEBHOOK_SECRET)")
    if rate_limit:
        try:
            parse_many(rate_limit)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--rate-limit") from None
    serve(port, data_dir, host=host, user_id=user_id or os.environ.get("PREPR_AUTOMATION_USER_ID"),
          webhook_url=webhook_url, webhook_secret=webhook_secret, seed_file=seed_file,
          latency_ms=latency_ms, rate_limit=rate_limit,
          ready=lambda url: click.echo(f"Prepr sandbox listening on {url}", err=True))
