"""Logging and Sentry, set up the same way by every process.

Sentry gets no PII and no request bodies; signatures, tokens and keys are scrubbed from
headers, breadcrumbs, extra data and exception values before anything leaves the process.
"""
from __future__ import annotations

import logging
import re
from functools import lru_cache
from typing import Any

from .settings import Settings

SECRET_WORDS = ("authorization", "signature", "token", "secret", "password", "dsn", "cookie", "api_key", "apikey",
                "access_key", "private_key")
_BEARER = re.compile(r"(?i)(bearer\s+)[^\s'\"\\]+")  # a backslash ends it too: JSON escapes stay intact
FILTERED = "[Filtered]"


def secret_values(settings: Settings) -> list[str]:
    values = [*settings.webhook_secrets, settings.access_token, settings.admin_token]
    return [v for v in values if v and len(v) >= 4]


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
