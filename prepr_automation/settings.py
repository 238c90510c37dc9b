"""Typed settings, parsed once from the environment (12-factor).

Each process asks only for what it needs (`require=`), so `explain` runs without a token and
the worker without signing keys. Any missing or malformed variable raises ConfigError whose
message is one line naming the variable; entry points print it and exit 2.

A command run in the folder of `prepr-automation dev` (`load_settings(cli=True)`) fills what the
environment leaves unset from the set-up dev wrote there (DATA_DIR/dev.json: sandbox URL and
token, webhook secret, admin token, web port, rules), so `backfill`, `restore`, `send` or
`trace` work against the running dev service with no exports.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Mapping, TypeVar

T = TypeVar("T")


class ConfigError(Exception):
    """A setting is missing or malformed; str() is the one line to print."""


@dataclass(frozen=True)
class Settings:
    webhook_secrets: tuple[str, ...] = ()
    access_token: str | None = field(default=None, repr=False)
    api_url: str = "https://api.eu1.prepr.io"
    tracking_url: str = "https://tracking.prepr.io"
    prepr_api: str = "auto"  # content_items | publications | auto (SPEC §9)
    customers_url: str = "https://customers.prepr.io"
    rate_limit: str = "34/second;790/minute;9800/hour"  # just under Prepr's 35/s, 800/min, 10,000/h
    automation_user_id: str | None = None
    rules_path: str = "rules"
    broker_url: str | None = field(default=None, repr=False)
    data_dir: str = "var"
    admin_token: str | None = field(default=None, repr=False)
    sentry_dsn: str | None = field(default=None, repr=False)
    sentry_environment: str | None = None
    max_body_bytes: int = 1_048_576
    dry_run: bool = False
    port: int = 5000
    dedupe_ttl: int = 4 * 24 * 3600  # Prepr resends for 3 days; keep a day of margin
    trace_ttl: int = 7 * 24 * 3600
    loop_max_writes: int = 5
    loop_window: int = 600
    visibility_timeout: int = 300
    task_max_retries: int = 8
    coalesce_seconds: float = 2.0
    redis_tls_verify: bool = True
    max_rendered_bytes: int = 102_400  # SPEC §8 "Rendering budget": one template's output
    proxy_hops: int = 0  # proxies in front of web whose X-Forwarded-* are believed (1 on Heroku)
    history_max_bytes: int | None = None  # None: half of Redis' maxmemory, else 256 MB (prepr_automation.budget)
    redis_max_connections: int | None = None  # per process; None: store.DEFAULT_CONNECTIONS by process type

    def redacted(self) -> dict[str, object]:
        """What may be logged: every secret-bearing field replaced by a marker."""
        hidden = {"webhook_secrets", "access_token", "broker_url", "admin_token", "sentry_dsn"}
        return {k: ("***" if k in hidden and getattr(self, k) else getattr(self, k))
                for k in self.__dataclass_fields__}


def _parse(env: Mapping[str, str], name: str, convert: Callable[[str], T], default: T) -> T:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return convert(raw.strip())
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{name} is malformed: {exc}") from None


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value <= 0:
        raise ValueError(f"expected a positive integer, got {raw!r}")
    return value


def _rate_limit(raw: str) -> str:
    """`limits` notation ("33/second;780/minute"), every window checked; a bare number is per second."""
    from limits import parse_many

    if raw.replace(".", "", 1).isdigit():
        value = float(raw)
        if value <= 0 or value != int(value):
            raise ValueError(f"a bare number is requests per second and must be a positive whole number, got {raw!r}")
        raw = f"{int(value)}/second"
    if any(item.amount <= 0 for item in parse_many(raw)):
        raise ValueError(f"every window needs a positive number of requests, got {raw!r}")
    return raw


def _dialect(raw: str) -> str:
    if raw not in DIALECTS:
        raise ValueError(f"expected one of {', '.join(DIALECTS)}, got {raw!r}")
    return raw


DIALECTS = ("auto", "content_items", "publications")


def _seconds(raw: str) -> float:
    value = float(raw)
    if not 0 <= value <= 60:
        raise ValueError(f"expected seconds between 0 and 60, got {raw!r}")
    return value


def _hops(raw: str) -> int:
    value = int(raw)
    if not 0 <= value <= 5:
        raise ValueError(f"expected the number of proxies in front of web, 0 to 5, got {raw!r}")
    return value


def _bytes(raw: str) -> int:
    """A byte count, with an optional unit as Redis writes them: 5000000, 12mb, 1gb, 512kb."""
    found = re.fullmatch(r"(\d+)\s*(b|kb|mb|gb)?", raw.lower())
    if found is None:
        raise ValueError(f"expected a number of bytes such as 12mb, got {raw!r}")
    value = int(found[1]) * {"b": 1, "kb": 1024, "mb": 1024 ** 2, "gb": 1024 ** 3}[found[2] or "b"]
    if value <= 0:
        raise ValueError(f"expected a positive size, got {raw!r}")
    return value


def _connections(raw: str) -> int:
    value = int(raw)
    if value < 2:  # one for the door's atomic step, one for the history that follows it
        raise ValueError(f"expected at least 2 connections, got {raw!r}")
    return value


def _flag(raw: str) -> bool:
    lowered = raw.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected 0 or 1, got {raw!r}")


def _url(raw: str) -> str:
    if not raw.startswith(("http://", "https://")):
        raise ValueError(f"expected an http(s) URL, got {raw!r}")
    return raw.rstrip("/")


def _broker(raw: str) -> str:
    if not raw.startswith(("redis://", "rediss://", "redis+socket://", "unix://")):
        raise ValueError("expected a redis://, rediss:// or redis+socket:// URL")
    return raw


def _secrets(raw: str) -> tuple[str, ...]:
    keys = tuple(part.strip() for part in raw.split(",") if part.strip())
    if not keys:
        raise ValueError("no key in the list")
    return keys


DEV_STATE = "dev.json"
# One Prepr at a time: if the environment names any of these, none is taken from dev's set-up
# (a real token must never be sent to the sandbox, nor the sandbox's token to the real Prepr).
PREPR_CONNECTION = ("PREPR_ACCESS_TOKEN", "PREPR_API_URL", "PREPR_TRACKING_URL", "PREPR_AUTOMATION_USER_ID",
                    "PREPR_CUSTOMERS_URL", "PREPR_API")


def dev_state_path(env: Mapping[str, str]) -> Path:
    return Path(_parse(env, "DATA_DIR", str, Settings.data_dir)) / DEV_STATE


def write_dev_state(env: Mapping[str, str], values: Mapping[str, str]) -> Path:
    """Record dev's set-up (environment variable -> value) where the CLI finds it; owner-only."""
    path = dev_state_path(env)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text(json.dumps(dict(values), indent=2))
    return path


def dev_state(env: Mapping[str, str]) -> dict[str, str]:
    """The variables dev's set-up would add to `env` (none that `env` sets itself)."""
    try:
        state = json.loads(dev_state_path(env).read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(state, dict):
        return {}
    if any((env.get(name) or "").strip() for name in PREPR_CONNECTION):
        state = {k: v for k, v in state.items() if k not in PREPR_CONNECTION}
    return {k: str(v) for k, v in state.items() if not (env.get(k) or "").strip()}


def load_settings(env: Mapping[str, str] | None = None, require: Iterable[str] = (),
                  cli: bool = False) -> Settings:
    """Read every variable; `require` names Settings fields that must be set for this process;
    `cli`: a command-line process, which also reads dev's set-up (see dev_state)."""
    env = os.environ if env is None else env
    if cli:
        env = {**env, **dev_state(env)}
    broker = _parse(env, "CELERY_BROKER_URL", _broker, None) or _parse(env, "REDIS_URL", _broker, None)
    settings = Settings(
        webhook_secrets=_parse(env, "PREPR_WEBHOOK_SECRETS", _secrets, ()),
        access_token=_parse(env, "PREPR_ACCESS_TOKEN", str, None),
        api_url=_parse(env, "PREPR_API_URL", _url, Settings.api_url),
        tracking_url=_parse(env, "PREPR_TRACKING_URL", _url, Settings.tracking_url),
        prepr_api=_parse(env, "PREPR_API", _dialect, Settings.prepr_api),
        customers_url=_parse(env, "PREPR_CUSTOMERS_URL", _url, Settings.customers_url),
        rate_limit=_parse(env, "PREPR_RATE_LIMIT", _rate_limit, Settings.rate_limit),
        automation_user_id=_parse(env, "PREPR_AUTOMATION_USER_ID", str, None),
        rules_path=_parse(env, "RULES_PATH", str, Settings.rules_path),
        broker_url=broker,
        data_dir=_parse(env, "DATA_DIR", str, Settings.data_dir),
        admin_token=_parse(env, "ADMIN_TOKEN", str, None),
        sentry_dsn=_parse(env, "SENTRY_DSN", str, None),
        sentry_environment=_parse(env, "SENTRY_ENVIRONMENT", str, None),
        max_body_bytes=_parse(env, "MAX_BODY_BYTES", _positive_int, Settings.max_body_bytes),
        dry_run=_parse(env, "DRY_RUN", _flag, False),
        port=_parse(env, "PORT", _positive_int, Settings.port),
        loop_max_writes=_parse(env, "LOOP_MAX_WRITES", _positive_int, Settings.loop_max_writes),
        loop_window=_parse(env, "LOOP_WINDOW_SECONDS", _positive_int, Settings.loop_window),
        visibility_timeout=_parse(env, "VISIBILITY_TIMEOUT", _positive_int, Settings.visibility_timeout),
        task_max_retries=_parse(env, "TASK_MAX_RETRIES", int, Settings.task_max_retries),
        coalesce_seconds=_parse(env, "COALESCE_SECONDS", _seconds, Settings.coalesce_seconds),
        redis_tls_verify=_parse(env, "REDIS_TLS_VERIFY", _flag, True),
        max_rendered_bytes=_parse(env, "MAX_RENDERED_BYTES", _positive_int, Settings.max_rendered_bytes),
        # Heroku's router (it sets DYNO in every dyno) is one proxy; elsewhere none unless told
        proxy_hops=_parse(env, "PROXY_HOPS", _hops, 1 if env.get("DYNO") else Settings.proxy_hops),
        history_max_bytes=_parse(env, "HISTORY_MAX_BYTES", _bytes, None),
        redis_max_connections=_parse(env, "REDIS_MAX_CONNECTIONS", _connections, None),
    )
    names = {"webhook_secrets": "PREPR_WEBHOOK_SECRETS", "access_token": "PREPR_ACCESS_TOKEN",
             "admin_token": "ADMIN_TOKEN", "broker_url": "CELERY_BROKER_URL"}
    for attr in require:
        if not getattr(settings, attr):
            raise ConfigError(f"{names.get(attr, attr.upper())} is required but not set")
    return settings
