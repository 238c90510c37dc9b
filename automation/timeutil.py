"""Prepr dates come as int seconds, numeric strings, ISO 8601 strings or "" (no date)."""
from __future__ import annotations

import datetime as dt
from typing import Any


def to_epoch(value: Any) -> float | None:
    if value is None or value == "" or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            return float(text)
        except ValueError:
            pass
        try:
            parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=dt.timezone.utc)
        return parsed.timestamp()
    return None


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: Any) -> int | None:
    """'10m' -> 600; '90s', '2h', '1d', '1w'; a bare integer is seconds."""
    if isinstance(text, bool):
        return None
    if isinstance(text, int):
        return text if text > 0 else None
    if not isinstance(text, str) or not text:
        return None
    unit = text[-1]
    number = text[:-1] if unit in _UNITS else text
    try:
        value = int(number)
    except ValueError:
        return None
    seconds = value * _UNITS.get(unit, 1)
    return seconds if seconds > 0 else None
