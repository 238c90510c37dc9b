"""`validate` and `explain` through the real console script group."""
from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from cli import main

ROOT = Path(__file__).resolve().parent.parent.parent
INVALID = ROOT / "tests" / "rules" / "invalid"


def test_validate_shipped_rules_summary() -> None:
    result = CliRunner().invoke(main, ["validate", str(ROOT / "rules")])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("ok: 6 file(s), 14 rule(s), 12 enabled")


def test_validate_prints_every_error_and_fails(monkeypatch) -> None:
    monkeypatch.chdir(INVALID)
    result = CliRunner().invoke(main, ["validate", "operators.yaml"])
    assert result.exit_code == 1
    expected = (INVALID / "operators.yaml.expected").read_text().splitlines()
    assert [line for line in result.stdout.splitlines() if line] == expected


def test_validate_uses_rules_path(monkeypatch) -> None:
    monkeypatch.setenv("RULES_PATH", str(INVALID / "syntax.yaml"))
    result = CliRunner().invoke(main, ["validate"])
    assert result.exit_code == 1 and "YAML syntax error" in result.output


def _event(tmp_path: Path) -> Path:
    envelope = {"id": "e1", "event": "content_item.changed", "created_on": 1,
                "payload": {"id": "p1", "model": {"body": "Article"}, "locales": ["en-GB"], "channels": [], "slug": {},
                            "items": {"en-GB": {"title": {"body": "Derby: late football winner"},
                                                "tags": {"items": []}}}}}
    path = tmp_path / "event.json"
    path.write_text(json.dumps(envelope))
    return path


def test_explain_json_plans_without_writing(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["explain", str(_event(tmp_path)), "--rules", str(ROOT / "rules"), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    rules = {r["rule_id"]: r for r in out["evaluation"]["rules"]}
    assert rules["tag-football-as-sport"]["status"] == "fired"
    assert rules["respect-opt-out"]["status"] == "not_matched"
    put = [c for c in out["evaluation"]["plan"] if c["kind"] == "put" and not c["dry_run"]]
    assert len(put) == 1
    tags = [t["body"] for t in put[0]["body"]["items"]["en-GB"]["tags"]["items"]]
    assert tags == ["sport", "football"]
    assert out["fetch"] is None  # the payload carries everything these rules read


def test_explain_human_output(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["explain", str(_event(tmp_path)), "--rules", str(ROOT / "rules")])
    assert result.exit_code == 0, result.output
    assert "rule tag-football-as-sport fired" in result.output
    assert "✓ q fz \"football\"" in result.output
    assert "PUT /publications/p1" in result.output


TRIGGER = """version: 1
rules:
  - id: resend
    on: content_item.published
    do:
      - trigger_webhooks: {filter: {model: {eq: Recipe}}, event: content_item.changed}
"""


def test_validate_refuses_what_the_named_dialect_lacks_at_its_place(monkeypatch, tmp_path: Path) -> None:
    (tmp_path / "resend.yaml").write_text(TRIGGER)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "var"))
    for named, ok in (("content_items", False), ("publications", True), ("auto", True)):
        monkeypatch.setenv("PREPR_API", named)
        result = CliRunner().invoke(main, ["validate", "resend.yaml"])
        assert result.exit_code == (0 if ok else 1), result.output
    monkeypatch.setenv("PREPR_API", "content_items")
    result = CliRunner().invoke(main, ["validate", "resend.yaml"])
    assert result.stdout.splitlines()[0] == (
        "resend.yaml:6:9: rules[0].do[0].trigger_webhooks: trigger_webhooks has no equivalent in the "
        "content_items dialect of Prepr's API (PREPR_API=content_items): Prepr's Mutation API has no bulk webhooks")
    # the shipped rules keep their trigger_webhooks example disabled: valid in either dialect
    assert CliRunner().invoke(main, ["validate", str(ROOT / "rules")]).exit_code == 0
