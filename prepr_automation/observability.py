"""Logging and Sentry, set up the same way by every process.

Sentry gets no PII and no request bodies; signatures, tokens and keys are scrubbed from
headers, breadcrumbs, extra data and exception values before anything leaves the process.
"""
from __future__ import annotations

import json
import logging
import re
from functools import lru_cache
from typing import Any, Iterable
from urllib.parse import quote

from .settings import Settings

SECRET_WORDS = ("authorization", "signature", "token", "secret", "password", "dsn", "cookie", "api_key", "apikey",
                "access_key", "private_key")
_BEARER = re.compile(r"(?i)(bearer\s+)[^\s'\"\\]+")  # a backslash ends it too: JSON escapes stay intact
FILTERED = "[Filtered]"


def secret_values(settings: Settings) -> list[str]:
    """Every configured secret (webhook secrets, access token, ADMIN_TOKEN) in each form it can take
    in stored text: as is, JSON-escaped (inside a dumped body) and percent-encoded (in a URL)."""
    values = [*settings.webhook_secrets, settings.access_token, settings.admin_token]
    return _forms(v for v in values if v and len(v) >= 4)


def _forms(secrets: Iterable[str]) -> list[str]:
    forms: set[str] = set()
    for secret in secrets:
        forms |= {secret, json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1], quote(secret, safe="")}
    return sorted(forms, key=len, reverse=True)  # longest first: no form is left half-replaced


@lru_cache(maxsize=4096)
def _secret_key(key: str) -> bool:
    lowered = key.lower()
    return any(word in lowered for word in SECRET_WORDS)


def scrub(value: Any, secrets: list[str]) -> Any:
    """Replace secret-named keys and any known secret value, at any depth."""
    if isinstance(value, dict):
        return {k: (FILTERED if isinstance(k, str) and _secret_key(k) else scrub(v, secrets))
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(scrub(v, secrets) for v in value)
    if isinstance(value, str):
        text = _BEARER.sub(r"\1" + FILTERED, value)
        for secret in secrets:
            text = text.replace(secret, FILTERED)
        return text
    return value


def scrub_text(text: str, secrets: list[str]) -> str:
    """The cheap form for text we produce ourselves (traces): bearer values and known secrets."""
    if "bearer" in text.lower():  # the case-insensitive scan costs more than the search for the word
        text = _BEARER.sub(r"\1" + FILTERED, text)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, FILTERED)
    return text


def scrub_stored(value: Any, secrets: list[str]) -> Any:
    """What is kept (dead letters): every configured secret replaced wherever it appears, keys and
    values at any depth, inside a stored response body too. Only the values: a field merely named
    like a secret stays, so a replay sends the event as it came."""
    return json.loads(scrub_text(json.dumps(value, default=str), secrets))


class ScrubFilter(logging.Filter):
    """Log lines with the secrets replaced: installed on the handlers of the web and worker."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = scrub_text(message, self.secrets)
        if cleaned != message or record.exc_info:
            if record.exc_info:
                import traceback

                cleaned += "\n" + scrub_text("".join(traceback.format_exception(*record.exc_info)), self.secrets)
                record.exc_info, record.exc_text = None, None
            record.msg, record.args = cleaned, None
        return True


def scrub_logs(secrets: list[str], logger: logging.Logger | None = None) -> None:
    """Put a ScrubFilter on every handler of `logger` (the root logger by default)."""
    for handler in (logger or logging.getLogger()).handlers:
        if not any(isinstance(f, ScrubFilter) for f in handler.filters):
            handler.addFilter(ScrubFilter(secrets))


def before_send_factory(settings: Settings):
    secrets = secret_values(settings)

    def before_send(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
        request = event.get("request")
        if isinstance(request, dict):
            request.pop("data", None)
            request.pop("cookies", None)
        return scrub(event, secrets)

    return before_send


def init_sentry(settings: Settings, process: str, transport: Any = None) -> bool:
    """Start Sentry when SENTRY_DSN is set (or a transport is given, as tests do)."""
    if not settings.sentry_dsn and transport is None:
        return False
    import sentry_sdk
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.flask import FlaskIntegration

    before_send = before_send_factory(settings)
    sentry_sdk.init(
        dsn=settings.sentry_dsn or "https://public@sentry.invalid/1",
        environment=settings.sentry_environment,
        integrations=[FlaskIntegration(), CeleryIntegration()],
        max_request_body_size="never",
        include_local_variables=False,
        before_send=before_send,
        before_breadcrumb=lambda crumb, hint: scrub(crumb, secret_values(settings)),
        transport=transport,
        server_name=process,
    )
    return True


def setup_logging(level: int = logging.INFO) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
