"""`prepr-automation doctor`: checks a deployment from where it runs, one line per check.

`✓ what` or `✗ what — the fix`; exit 1 on any ✗. Read-only (no write to Prepr, none to the store:
the dialect is detected, not remembered) and a handful of API calls. Every failure, Prepr or
Redis unreachable included, is one line: nothing here lets a traceback through, and no secret is
printed (keys are named by position, the Redis URL by host and port).
"""
from __future__ import annotations

import re
import sys
from typing import Callable
from urllib.parse import urlparse

import click

from prepr.client import PreprClient
from prepr.errors import PreprError, PreprNotFound
from prepr_automation.observability import scrub_text, secret_values
from prepr_automation.settings import ConfigError, Settings, load_settings

from .doctor_lines import Line, bad, good
from .doctor_prepr import SETUP, prepr_lines
from .doctor_rules import rule_lines
from .doctor_store import connect, redis_lines

WEBHOOK_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)
# app.json's `"generator": "secret"` fills PREPR_WEBHOOK_SECRETS with 64 random hex digits, so the
# app starts before its webhook exists; it verifies nothing Prepr sends.
PLACEHOLDER = re.compile(r"^[0-9a-f]{64}$", re.IGNORECASE)


def secret_lines(keys: tuple[str, ...]) -> list[Line]:
    """Each signing key must be a Prepr webhook id (a UUID); never printed, named by position."""
    fix = f"register the webhook in Prepr and set PREPR_WEBHOOK_SECRETS to its id ({SETUP})"
    if not keys:
        return [bad("PREPR_WEBHOOK_SECRETS is not set: every delivery is refused (503)", fix)]
    lines = []
    for n, key in enumerate(keys, 1):
        which = f"PREPR_WEBHOOK_SECRETS key {n} of {len(keys)}"
        if PLACEHOLDER.match(key):
            lines.append(bad(f"{which} is the placeholder app.json generated, not a webhook id: every delivery "
                             "is refused (401)", fix))
        elif not WEBHOOK_ID.match(key):
            lines.append(bad(f"{which} does not look like a Prepr webhook id (a UUID; {len(key)} characters "
                             "given)", fix))
    return lines or [good(f"PREPR_WEBHOOK_SECRETS: {len(keys)} key(s), each a Prepr webhook id")]


def _channels(settings: Settings, dialect: str) -> Callable[[], bool]:
    def has_channels() -> bool:
        api = PreprClient(settings.api_url, settings.access_token or "-", settings.tracking_url, timeout=(3.05, 10))
        try:
            page = api.request("GET", "/channels", params=[("limit", 1), ("fields", "id")]) or {}
        except PreprNotFound:
            return False
        except PreprError:
            return True  # cannot tell: the token's and Prepr's own lines say what is wrong
        finally:
            api.close()
        return bool(page.get("items")) or int(page.get("total") or 0) > 0
    return has_channels


def diagnose(settings: Settings) -> list[Line]:
    """Every line, in the order an operator fixes them: secrets, Prepr, Redis, rules."""
    lines = secret_lines(settings.webhook_secrets)
    client, where, missing = connect(settings)
    prepr, dialect = prepr_lines(settings, client)
    lines += prepr
    if missing is not None:
        lines.append(missing)
    else:
        assert client is not None
        lines += redis_lines(client, where, urlparse(settings.broker_url or "").password)
    has_channels = _channels(settings, dialect) if dialect is not None else None
    named = None if settings.prepr_api == "auto" else settings.prepr_api  # held against the rules as validate does
    return lines + rule_lines(settings.rules_path, dialect or named, has_channels)


@click.command("doctor")
def doctor() -> None:
    """Check this deployment: token, dialect, user, webhook secrets, Redis, rules (exit 1 on any ✗)."""
    try:
        settings = load_settings(cli=True)
    except ConfigError as exc:
        click.echo(str(bad(f"the settings: {exc}", "fix that variable; the processes refuse to start with it")))
        sys.exit(1)
    try:
        lines = diagnose(settings)
    except Exception as exc:  # a check's own bug: still one line, never a traceback
        lines = [bad(f"doctor could not finish: {type(exc).__name__}: {exc}"[:300], "report this, with the line")]
    secrets = secret_values(settings)
    for line in lines:
        click.echo(scrub_text(str(line), secrets))
    failed = sum(not line.ok for line in lines)
    click.echo(f"{failed} problem(s) found" if failed else "all checks passed", err=True)
    sys.exit(1 if failed else 0)


COMMANDS = [doctor]
