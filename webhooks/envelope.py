"""The delivery envelope, validated once at the door.

Real deliveries are quirky (empty strings as dates, numbers as strings, `null` lists, no
`performed_by` in older ones): the schema checks only what routing needs and keeps the rest
untouched, so the worker sees the delivery exactly as Prepr sent it.

The marshmallow schema is the contract and the only source of error messages. Building its
result costs more than everything else the receiver does in Python, so a plain-Python pre-check
answers first: it says "valid" only for envelopes the schema accepts as well (it shares the
schema's own predicates and is stricter everywhere else), and anything it is unsure of goes to
the schema. Every captured real delivery passes the pre-check; tests prove the implication.
"""
from __future__ import annotations

import json
import math
import re
from datetime import datetime, timezone
from typing import Any

from marshmallow import INCLUDE, Schema, ValidationError, fields, validate

NAME_MAX = 200
MAX_DEPTH = 32  # real deliveries nest 6 deep; the worker's recursive code must never meet 500
_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]|\xed[\xa0-\xbf]")  # escaped or surrogatepass-encoded


def name_ok(value: str) -> bool:
    """`id` and `event`: non-empty, bounded (they become Redis keys and log lines)."""
    return 0 < len(value) <= NAME_MAX


def created_on_ok(value: Any) -> bool:
    """Integer seconds, an ISO-8601 string, or Prepr's empty string for "unknown"."""
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        return True
    if isinstance(value, str):
        text = value.strip()
        if text == "" or text.isdigit():
            return True
        try:
            datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return False
        return True
    return False


def performed_by_ok(value: Any) -> bool:
    """A user id string, or an object with an `id` (newer deliveries)."""
    return isinstance(value, str) or (isinstance(value, dict) and isinstance(value.get("id", ""), str))


class CreatedOn(fields.Field):
    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if not created_on_ok(value):
            raise ValidationError("must be integer seconds or an ISO-8601 string")
        return value


class PerformedBy(fields.Field):
    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if not performed_by_ok(value):
            raise ValidationError("must be a user id or an object with an id")
        return value


class EnvelopeSchema(Schema):
    class Meta:
        unknown = INCLUDE

    id = fields.String(required=True, validate=validate.Length(min=1, max=NAME_MAX))  # a validator must raise
    event = fields.String(required=True, validate=validate.Length(min=1, max=NAME_MAX))
    payload = fields.Dict(required=True)
    created_on = CreatedOn(allow_none=True)
    performed_by = PerformedBy(allow_none=True)
    dc = fields.String(allow_none=True)


_SCHEMA = EnvelopeSchema()


def plainly_valid(data: Any) -> bool:
    """True only if the schema accepts `data` too; False means "ask the schema", not "invalid".

    Exact types (`type(x) is str`) where the schema would also take subclasses: JSON never
    yields those, and a miss only costs the schema's time.
    """
    if type(data) is not dict:
        return False
    ident, event = data.get("id"), data.get("event")
    if type(ident) is not str or type(event) is not str or not (name_ok(ident) and name_ok(event)):
        return False
    if type(data.get("payload")) is not dict:
        return False
    created, performed, dc = data.get("created_on"), data.get("performed_by"), data.get("dc")
    return ((created is None or created_on_ok(created))
            and (performed is None or performed_by_ok(performed))
            and (dc is None or type(dc) is str))


def _too_deep(value: Any, limit: int) -> bool:
    """Iterative, so a value too deep for the stack cannot break the check itself."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node
        for child in children:
            if isinstance(child, (dict, list)):
                if depth + 1 > limit:
                    return True
                stack.append((child, depth + 1))
    return False


def _field_name(key: str) -> str:
    return key.encode("utf-8", "backslashreplace").decode("utf-8")


def bounds_errors(data: dict[str, Any], raw: bytes) -> dict[str, list[str]]:
    """What no schema sees: nesting deeper than MAX_DEPTH, and strings that cannot be stored as
    UTF-8 (lone surrogates, which JSON can escape). Scans only bodies the raw bytes make suspect."""
    errors: dict[str, list[str]] = {}
    if raw.count(b"[") + raw.count(b"{") > MAX_DEPTH:
        for key, value in data.items():
            if isinstance(value, (dict, list)) and _too_deep(value, MAX_DEPTH - 1):
                errors[_field_name(key)] = [f"nested deeper than {MAX_DEPTH} levels"]
    if _SURROGATE.search(raw):
        for key, value in data.items():
            try:
                key.encode("utf-8")
                json.dumps(value, ensure_ascii=False).encode("utf-8")
            except UnicodeEncodeError:
                errors.setdefault(_field_name(key), []).append("holds a lone surrogate, not storable as UTF-8")
    return errors


def created_epoch(value: Any) -> float | None:
    """`created_on` as epoch seconds; None when it says nothing usable (missing, "", "²", huge)."""
    try:
        if isinstance(value, str):
            text = value.strip()
            if not text:
                return None
            if not text.isdigit():
                when = datetime.fromisoformat(text.replace("Z", "+00:00"))
                return (when if when.tzinfo else when.replace(tzinfo=timezone.utc)).timestamp()
            value = int(text)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        seconds = float(value)
    except (ValueError, OverflowError):
        return None
    return seconds if math.isfinite(seconds) else None


def validate_envelope(data: Any, raw: bytes = b"") -> dict[str, list[str]]:
    """Field → messages; empty when the envelope is valid. The delivery itself is not rewritten."""
    if not isinstance(data, dict):
        return {"_schema": ["the body must be a JSON object"]}
    errors = bounds_errors(data, raw)
    if errors:
        return errors
    if plainly_valid(data):
        return {}
    errors = _SCHEMA.validate(data)
    return {str(k): (v if isinstance(v, list) else [str(v)]) for k, v in errors.items()}
