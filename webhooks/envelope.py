"""The delivery envelope, validated once at the door.

Real deliveries are quirky (empty strings as dates, numbers as strings, `null` lists, no
`performed_by` in older ones): the schema checks only what routing needs and keeps the rest
untouched, so the worker sees the delivery exactly as Prepr sent it.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from marshmallow import INCLUDE, Schema, ValidationError, fields


class CreatedOn(fields.Field):
    """Integer seconds, an ISO-8601 string, or Prepr's empty string for "unknown"."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, bool):
            raise ValidationError("must be integer seconds or an ISO-8601 string")
        if isinstance(value, (int, float)):
            return value
        if isinstance(value, str):
            text = value.strip()
            if text == "" or text.isdigit():
                return value
            try:
                datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                raise ValidationError("must be integer seconds or an ISO-8601 string") from None
            return value
        raise ValidationError("must be integer seconds or an ISO-8601 string")


class PerformedBy(fields.Field):
    """A user id string, or an object with an `id` (newer deliveries)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, str) or (isinstance(value, dict) and isinstance(value.get("id", ""), str)):
            return value
        raise ValidationError("must be a user id or an object with an id")


class EnvelopeSchema(Schema):
    class Meta:
        unknown = INCLUDE

    id = fields.String(required=True, validate=lambda s: 0 < len(s) <= 200)
    event = fields.String(required=True, validate=lambda s: 0 < len(s) <= 200)
    payload = fields.Dict(required=True)
    created_on = CreatedOn(allow_none=True)
    performed_by = PerformedBy(allow_none=True)
    dc = fields.String(allow_none=True)


_SCHEMA = EnvelopeSchema()


def validate_envelope(data: Any) -> dict[str, list[str]]:
    """Field → messages; empty when the envelope is valid. The delivery itself is not rewritten."""
    if not isinstance(data, dict):
        return {"_schema": ["the body must be a JSON object"]}
    errors = _SCHEMA.validate(data)
    return {str(k): (v if isinstance(v, list) else [str(v)]) for k, v in errors.items()}
