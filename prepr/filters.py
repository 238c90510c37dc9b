"""Rule-style filter mappings → Prepr's query-string filter encoding.

One pure function, `encode_filter`, shared by the client (list / bulk calls), the rule engine
(bulk actions, backfill) and the sandbox's tests. It never talks to Prepr.

Input (the `when:` / `filter:` mapping of a rule file)::

    {"tags": {"in": ["football", "tennis"]}, "model": {"eq": "Article"},
     "created_on": {"gt": "2024-01-01T00:00:00+00:00"}}
    {"tags": [{"in": ["a", "b"]}, {"all": ["c"]}]}          # Prepr's list form
    {"all": [{"tags": {"in": ["a"]}}, {"title": {"fz": "x"}}]}  # AND: merged

Output: ordered `(key, value)` pairs, ready for `requests` (`params=`) or `urlencode`::

    tags[0][in][0]=football&tags[0][in][1]=tennis&tags[0][param]=slug
    model[id]=Article
    created_on[0][gt]=2024-01-01T00:00:00+00:00

Decisions (Prepr's reference shows both `field[op]` and `field[i][op]`; we follow SPEC §9):

* Indexed form `field[i][op]` for every field, one index per condition, except `model` and
  `status`, which are single-valued and use `field[op]` (`model[eq]` is spelled `model[id]`,
  SPEC §9). Lists become `[op][k]=v`. Booleans (`has`) become `true` / `false`.
* Several conditions on one field (list form, or the same field under `all:`) are ANDed, as
  Prepr does, and get consecutive indexes. For `model` / `status`, a second condition cannot be
  expressed and raises `UnsupportedFilter`.
* Reference fields given by something other than an id get a `param` naming what was given:
  tags, channels and containers → `param=slug` (the value is slugified: "Premier League" →
  "premier-league", as Prepr derives tag slugs from their body); `created_by` / `assigned_to`
  given an e-mail → `param=email`. An explicit `param` in a condition wins and the value is
  passed verbatim. A list mixing ids and slugs cannot be one condition → `UnsupportedFilter`.
* Models: Prepr filters models by id. A model *name* (Article) is encoded verbatim as given,
  unless `model_ids` (name → id, e.g. from `GET /models`) maps it to its id. The sandbox
  accepts a model's id or its name, so rules written with names work against it directly.
* Dates (`created_on`, `changed_on`, `publish_on`, `expire_on`) pass ints / ISO strings
  through; `datetime` values are written as ISO-8601 (UTC if naive).
* No Prepr equivalent → `UnsupportedFilter(field, reason)`: operators `matches`, `changed`;
  combinators `any`, `not`; any field that is not a Prepr publication filter (resource paths
  such as `items.*.intro.body`, `label`, `name`, envelope paths such as `event.performed_by`).
"""
from __future__ import annotations

import re
import unicodedata
from datetime import datetime, timezone
from typing import Any, Mapping, Sequence

__all__ = ["encode_filter", "UnsupportedFilter", "FIELDS", "OPERATORS", "slugify", "is_id"]

OPERATORS: frozenset[str] = frozenset(
    {"eq", "neq", "in", "all", "has", "sw", "fz", "lt", "lte", "gt", "gte"})
LIST_OPERATORS = frozenset({"in", "all"})
NO_EQUIVALENT = {"matches": "regular expressions have no Prepr filter",
                 "changed": "'changed' compares with this service's memory, not Prepr's data"}

SINGLE_FIELDS = frozenset({"model", "status"})
SLUG_FIELDS = frozenset({"tags", "channels", "containers"})
PERSON_FIELDS = frozenset({"created_by", "assigned_to"})
DATE_FIELDS = frozenset({"created_on", "changed_on", "publish_on", "expire_on"})
TEXT_FIELDS = frozenset({"slug", "title", "q", "locales"})
FIELDS: frozenset[str] = SINGLE_FIELDS | SLUG_FIELDS | PERSON_FIELDS | DATE_FIELDS | TEXT_FIELDS

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


class UnsupportedFilter(ValueError):
    """The filter cannot be sent to Prepr; `field` and `reason` say why, for the rule author."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def is_id(value: object) -> bool:
    """Prepr ids are UUIDs; anything else is a name, slug or e-mail."""
    return isinstance(value, str) and bool(_UUID.fullmatch(value))


def slugify(text: str) -> str:
    """Prepr-style slug: ASCII, lowercase, words joined by '-'."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")


def _scalar(field: str, value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value.isoformat()
    if isinstance(value, (str, int, float)):
        return str(value)
    raise UnsupportedFilter(field, f"value {value!r} is not a string, number, boolean or date")


def _conditions(field: str, spec: Any) -> list[dict[str, Any]]:
    """Normalise one field's spec into a list of condition mappings."""
    if isinstance(spec, Mapping):
        return [dict(spec)]
    if isinstance(spec, (list, tuple)):
        if spec and all(isinstance(c, Mapping) for c in spec):
            return [dict(c) for c in spec]
        if all(not isinstance(c, (Mapping, list, tuple)) for c in spec):
            return [{"in": list(spec)}]  # a bare list of values: any of them
        raise UnsupportedFilter(field, "a list must hold either conditions or values, not both")
    return [{"eq": spec}]  # a bare value: equality


def _collect(mapping: Mapping[str, Any], out: dict[str, list[dict[str, Any]]]) -> None:
    if not isinstance(mapping, Mapping):
        raise UnsupportedFilter("filter", f"expected a mapping, got {type(mapping).__name__}")
    for field, spec in mapping.items():
        if field == "all":
            parts = spec if isinstance(spec, (list, tuple)) else [spec]
            for part in parts:
                _collect(part, out)
        elif field in ("any", "not"):
            raise UnsupportedFilter(field, f"Prepr list filters cannot express '{field}:' (only AND)")
        elif field not in FIELDS:
            raise UnsupportedFilter(field, "not a Prepr publication filter (supported: "
                                    + ", ".join(sorted(FIELDS)) + ")")
        else:
            out.setdefault(field, []).extend(_conditions(field, spec))


def _values(field: str, op: str, value: Any) -> list[Any]:
    if op in LIST_OPERATORS:
        if isinstance(value, (list, tuple, set, frozenset)):
            values = list(value)
        else:
            values = [value]
        if not values:
            raise UnsupportedFilter(field, f"'{op}' needs at least one value")
        return values
    if isinstance(value, (list, tuple)):
        raise UnsupportedFilter(field, f"'{op}' takes one value, got a list")
    if op == "has" and not isinstance(value, bool):
        raise UnsupportedFilter(field, "'has' takes true or false")
    return [value]


def _param_for(field: str, values: list[Any]) -> str | None:
    """Which `param` Prepr needs to match what the rule author wrote (None: ids)."""
    if field in SLUG_FIELDS:
        kinds = {is_id(v) for v in values}
        if kinds == {True, False}:
            raise UnsupportedFilter(field, "mixes ids and names in one condition; split it")
        return None if kinds == {True} else "slug"
    if field in PERSON_FIELDS:
        emails = {isinstance(v, str) and "@" in v for v in values}
        if emails == {True, False}:
            raise UnsupportedFilter(field, "mixes ids and e-mails in one condition; split it")
        return "email" if emails == {True} else None
    return None


def _encode_condition(field: str, cond: dict[str, Any], prefix: str,
                      model_ids: Mapping[str, str]) -> list[tuple[str, str]]:
    explicit_param = cond.pop("param", None)
    ops = [k for k in cond]
    if not ops:
        raise UnsupportedFilter(field, "empty condition")
    pairs: list[tuple[str, str]] = []
    auto_param: str | None = None
    for op in ops:
        if op in NO_EQUIVALENT:
            raise UnsupportedFilter(field, f"operator '{op}': {NO_EQUIVALENT[op]}")
        if op not in OPERATORS:
            raise UnsupportedFilter(field, f"unknown operator '{op}'")
        values = _values(field, op, cond[op])
        if op != "has" and explicit_param is None:
            param = _param_for(field, values)
            if param == "slug":
                values = [slugify(str(v)) for v in values]
            auto_param = auto_param or param
        if field == "model" and op != "has":
            values = [model_ids.get(v, v) if isinstance(v, str) else v for v in values]
        key_op = "id" if (field == "model" and op == "eq") else op
        if op in LIST_OPERATORS:
            pairs += [(f"{prefix}[{key_op}][{k}]", _scalar(field, v)) for k, v in enumerate(values)]
        else:
            pairs.append((f"{prefix}[{key_op}]", _scalar(field, values[0])))
    param = explicit_param if explicit_param is not None else auto_param
    if param is not None:
        pairs.append((f"{prefix}[param]", _scalar(field, param)))
    return pairs


def encode_filter(mapping: Mapping[str, Any] | None,
                  model_ids: Mapping[str, str] | None = None) -> list[tuple[str, str]]:
    """Encode a rule-style filter mapping as Prepr query parameters (see module doc).

    Raises UnsupportedFilter(field, reason) for anything Prepr's list filters cannot express.
    """
    if not mapping:
        return []
    grouped: dict[str, list[dict[str, Any]]] = {}
    _collect(mapping, grouped)
    pairs: list[tuple[str, str]] = []
    for field, conditions in grouped.items():
        if field in SINGLE_FIELDS:
            if len(conditions) > 1:
                raise UnsupportedFilter(field, "Prepr takes one condition on this field")
            pairs += _encode_condition(field, conditions[0], field, model_ids or {})
            continue
        for index, cond in enumerate(conditions):
            pairs += _encode_condition(field, cond, f"{field}[{index}]", model_ids or {})
    return pairs


def decode_filter(pairs: Sequence[tuple[str, str]]) -> dict[str, list[dict[str, Any]]]:
    """The inverse, for servers (the sandbox): query pairs → {field: [condition, ...]}.

    `model[id]` reads back as `eq`; lists come back as lists; unknown keys are ignored.
    """
    key_re = re.compile(r"^([a-z_]+)(?:\[(\d+)\])?\[([a-z_]+)\](?:\[(\d+)\])?$")
    found: dict[str, dict[int, dict[str, Any]]] = {}
    for key, value in pairs:
        match = key_re.match(key)
        if not match:
            continue
        field, index, op, item = match.groups()
        if field not in FIELDS:
            continue
        op = "eq" if op == "id" else op
        cond = found.setdefault(field, {}).setdefault(int(index or 0), {})
        if item is not None:
            cond.setdefault(op, []).append(value)
        else:
            cond[op] = value
    return {field: [conds[i] for i in sorted(conds)] for field, conds in found.items()}
