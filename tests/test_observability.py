"""Scrubbing: secrets go, structure stays (a trace is JSON and must still parse)."""
from __future__ import annotations

import json

import pytest

from prepr_automation.observability import FILTERED, scrub, scrub_text

SECRET = "tok-5f2a9c81"


@pytest.mark.parametrize("data", [
    {"error": f"upstream saw Bearer {SECRET}"},
    {"body_excerpt": json.dumps({"error": f"saw bearer {SECRET}", "q": 'a "quoted" word'})},
    {"calls": [{"path": f"/x?token={SECRET}", "nested": [f"{SECRET}\\n", {"deep": f"BEARER {SECRET}"}]}]},
])
def test_scrub_text_removes_secrets_and_keeps_json_valid(data: dict) -> None:
    text = scrub_text(json.dumps(data), [SECRET])
    assert SECRET not in text
    assert FILTERED in text
    json.loads(text)


def test_scrub_filters_secret_named_keys_at_any_depth() -> None:
    scrubbed = scrub({"headers": {"Authorization": "x", "Prepr-Signature": "y", "Accept": "z"},
                      "items": [{"api_key": "k", "keywords": ["football"]}]}, [])
    assert scrubbed == {"headers": {"Authorization": FILTERED, "Prepr-Signature": FILTERED, "Accept": "z"},
                        "items": [{"api_key": FILTERED, "keywords": ["football"]}]}
