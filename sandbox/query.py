"""Prepr's list filters, evaluated over sandbox documents.

Reads the query-string encoding Prepr documents (`field[i][op]=v`, `field[i][op][k]=v`,
`field[op]=v`, `model[id]=v`, `field[i][param]=slug`) independently of the client's encoder, so
the tests that run one against the other check both. Conditions on different fields and
several conditions on one field are ANDed; `in` is any-of, `all` is every-of.
"""
from __future__ import annotations

import re
import unicodedata
from datetime import datetime, timezone
from typing import Any, Iterable

FIELDS = {"model", "status", "locales", "tags", "channels", "containers", "created_by", "assigned_to",
          "slug", "title", "q", "created_on", "changed_on", "publish_on", "expire_on"}
OPERATORS = {"eq", "neq", "in", "all", "has", "sw", "fz", "lt", "lte", "gt", "gte"}
DATES = {"created_on", "changed_on", "publish_on", "expire_on"}
PARAMS = {"tags": {"id", "slug", "body"}, "channels": {"id", "slug", "name", "body"},
          "containers": {"id", "slug", "body"}, "created_by": {"id", "email", "full_name"},
          "assigned_to": {"id", "email", "full_name"}}
_KEY = re.compile(r"^([a-z_]+)(?:\[(\d+)\])?\[([a-z_]+)\](?:\[(\d+)\])?$")
SORTS = {"created_on", "changed_on", "publish_on"}


class BadFilter(ValueError):
    """The query names an unknown operator or param: Prepr answers 400."""


def fold(text: Any) -> str:
    """Case- and diacritic-insensitive form, for fz / sw / eq on text."""
    decomposed = unicodedata.normalize("NFKD", str(text))
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def slugify(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")


def parse(pairs: Iterable[tuple[str, str]]) -> dict[str, list[dict[str, Any]]]:
    """Query pairs → {field: [condition]}; ignores skip/limit/fields/sort and unknown fields."""
    found: dict[str, dict[int, dict[str, Any]]] = {}
    for key, value in pairs:
        match = _KEY.match(key)
        if not match or match.group(1) not in FIELDS:
            continue
        field, index, op, item = match.groups()
        if op == "id" and field == "model":
            op = "eq"
        if op != "param" and op not in OPERATORS:
            raise BadFilter(f"{key}: unknown operator {op!r}")
        cond = found.setdefault(field, {}).setdefault(int(index or 0), {})
        if item is not None:
            cond.setdefault(op, []).append(value)
        else:
            cond[op] = value
    for field, conds in found.items():
        for cond in conds.values():
            param = cond.get("param")
            if param is not None and param not in PARAMS.get(field, set()):
                raise BadFilter(f"{field}: unknown param {param!r}")
    return {field: [conds[i] for i in sorted(conds)] for field, conds in found.items()}


def _when(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    text = str(value)
    try:
        if re.fullmatch(r"-?\d+(\.\d+)?", text):
            return datetime.fromtimestamp(float(text), tz=timezone.utc)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadFilter(f"not a date: {text!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _tag_lists(pub: dict[str, Any]) -> Iterable[dict[str, Any]]:
    for fields in (pub.get("items") or {}).values():
        for value in (fields or {}).values():
            if isinstance(value, dict) and isinstance(value.get("items"), list):
                for element in value["items"]:
                    if isinstance(element, dict) and element.get("label") == "Tag":
                        yield element


def _texts(pub: dict[str, Any]) -> list[str]:
    out = []
    for fields in (pub.get("items") or {}).values():
        for value in (fields or {}).values():
            if isinstance(value, dict) and isinstance(value.get("body"), str) and value.get("label") != "Tag":
                out.append(value["body"])
    return out


def values_of(pub: dict[str, Any], field: str, param: str | None) -> list[Any]:
    """The values of one filter field of a publication (several for tags, locales...)."""
    if field == "model":
        model = pub.get("model") or {}
        return [v for v in (model.get("id"), model.get("body")) if v]
    if field == "status":
        return [pub.get("status")] if pub.get("status") else []
    if field == "locales":
        return list(pub.get("locales") or [])
    if field == "tags":
        return [t.get(param or "id") for t in _tag_lists(pub) if t.get(param or "id")]
    if field in ("channels", "containers"):
        key = "body" if (param == "name" and field == "containers") else (param or "id")
        return [c.get(key) for c in pub.get(field) or [] if c.get(key)]
    if field in ("created_by", "assigned_to"):
        person = pub.get(field) or {}
        return [person.get(param or "id")] if person.get(param or "id") else []
    if field == "slug":
        slug = pub.get("slug") or {}
        return [s for s in (slug.values() if isinstance(slug, dict) else [slug]) if s]
    if field == "title":
        return [f["title"]["body"] for f in (pub.get("items") or {}).values()
                if isinstance((f or {}).get("title"), dict) and f["title"].get("body")]
    if field == "q":
        return _texts(pub)
    if field in DATES:
        raw = pub.get(field)
        return [v for v in (raw.values() if isinstance(raw, dict) else [raw]) if v]
    return []


def _compare(op: str, have: Any, want: Any, dates: bool) -> bool:
    if dates:
        a, b = _when(have), _when(want)
        if a is None or b is None:
            return False
    else:
        a, b = fold(have), fold(want)
    return {"lt": a < b, "lte": a <= b, "gt": a > b, "gte": a >= b}[op]


def _holds(values: list[Any], op: str, want: Any, dates: bool) -> bool:
    folded = {fold(v) for v in values}
    if op == "eq":
        return fold(want) in folded
    if op == "neq":
        return fold(want) not in folded
    if op in ("in", "all"):
        wanted = [fold(w) for w in (want if isinstance(want, list) else [want])]
        return (any if op == "in" else all)(w in folded for w in wanted)
    if op == "has":
        present = bool(values)
        return present if fold(want) in ("true", "1") else not present
    if op == "sw":
        return any(fold(v).startswith(fold(want)) for v in values)
    if op == "fz":
        return any(fold(want) in fold(v) for v in values)
    return any(_compare(op, v, want, dates) for v in values)


def matches(pub: dict[str, Any], conditions: dict[str, list[dict[str, Any]]]) -> bool:
    for field, conds in conditions.items():
        for cond in conds:
            values = values_of(pub, field, cond.get("param"))
            for op, want in cond.items():
                if op != "param" and not _holds(values, op, want, field in DATES):
                    return False
    return True


def sort_key(sort: str | None):
    """Key function and reverse flag for `sort=created_on|-changed_on|publish_on...`."""
    name = (sort or "created_on").lstrip("-")
    if name not in SORTS:
        raise BadFilter(f"sort: unknown field {name!r}")

    def key(pub: dict[str, Any]) -> str:  # sorted() is stable: ties keep creation order
        value = pub.get(name)
        if isinstance(value, dict):
            value = min((v for v in value.values() if v), default="")
        try:
            stamp = _when(value)
        except BadFilter:
            stamp = None
        return stamp.isoformat() if stamp else ""
    return key, (sort or "").startswith("-")
