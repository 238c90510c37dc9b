"""Rule files as data: every invalid file yields exactly its `.expected` lines; valid ones load."""
from __future__ import annotations

from pathlib import Path

import pytest

from automation import RuleSetError, load_rules

DATA = Path(__file__).resolve().parent.parent / "rules"
INVALID = sorted(p for p in (DATA / "invalid").iterdir() if not p.name.endswith(".expected"))
VALID = sorted((DATA / "valid").glob("*.yaml"))
ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.mark.parametrize("case", INVALID, ids=lambda p: p.name)
def test_invalid_rule_file_reports_exact_errors(case: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(case.parent)
    expected = Path(f"{case.name}.expected" if case.suffix else f"{case.name}.expected").read_text()
    with pytest.raises(RuleSetError) as raised:
        load_rules(case.name)
    assert [str(e) for e in raised.value.errors] == expected.splitlines()


@pytest.mark.parametrize("case", VALID, ids=lambda p: p.name)
def test_valid_rule_file_loads(case: Path) -> None:
    ruleset = load_rules(case)
    assert ruleset.rules and all(r.id for r in ruleset.rules)


def test_shipped_example_rules_validate(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    ruleset = load_rules("rules")
    assert ruleset.summary()["rules"] >= 10
    names = {a.name for r in ruleset.rules for a in r.actions}
    assert names == {"add_tags", "remove_tags", "auto_tag", "assign_channels", "remove_channels", "update",
                     "bulk_put", "bulk_delete", "trigger_webhooks", "track_event"}
    for rule in ruleset.rules:
        if any(a.name == "bulk_delete" for a in rule.actions):
            assert not rule.enabled, f"{rule.id}: destructive examples ship disabled"


def test_never_half_loaded(tmp_path: Path) -> None:
    (tmp_path / "good.yaml").write_text("version: 1\nrules:\n  - id: a\n    on: asset.created\n"
                                        "    do: [{add_tags: [x]}]\n")
    (tmp_path / "bad.yaml").write_text("version: 1\nrules:\n  - id: b\n    on: asset.created\n"
                                       "    do: [{add_tags: 3}]\n")
    with pytest.raises(RuleSetError) as raised:
        load_rules(tmp_path)
    assert [e.file for e in raised.value.errors] == [str(tmp_path / "bad.yaml")]
