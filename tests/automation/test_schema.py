"""The JSON Schema of rule files: generated from the loader's schemas, in step with rules/schema.json,
accepting every valid file and rejecting the structural errors of the invalid ones."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from jsonschema import Draft202012Validator

from automation.schema import rule_file_schema
from automation.yamlsrc import Source, to_plain
from cli import main

ROOT = Path(__file__).resolve().parent.parent.parent
DATA = ROOT / "tests" / "rules"
VOCABULARIES = {ROOT / "rules" / "vocab" / "sport.yaml", DATA / "invalid" / "vocab_case" / "words.yaml"}
VALID = sorted(p for p in [*(ROOT / "rules").rglob("*.yaml"), *(DATA / "valid").glob("*.yaml"),
                           *(DATA / "tests").glob("*.yaml")] if p not in VOCABULARIES)
# invalid fixtures -> the errors a schema can see (key path, as the loader reports it)
STRUCTURAL = {
    "actions.yaml": ["rules[0].do[0]", "rules[0].do[4].bulk_delete.max_items"],
    "operators.yaml": ["rules[0].when.title.fuzzy"],
    "types.yaml": ["version", "rules[0].id", "rules[0].enabled", "rules[0].stop", "rules[1]",
                   "rules[1].do[0].track_event"],
    "unknown_keys.yaml": ["rules[0].whne", "rules[0].do[0].add_tags.colour"],
    "vocab_case/rules.yaml": ["rules[0].do[0].auto_tag.match", "rules[0].do[4].update",
                              "rules[0].do[5]"],
    "cases.yaml": ["tests[1]", "tests[1].event", "tests[1].expect.calls[0].method"],
}
VALIDATOR = Draft202012Validator(rule_file_schema())


def _data(path: Path) -> object:
    source = Source.read(path)
    assert not source.errors, source.errors
    return to_plain(source.root)


def test_schema_is_valid_2020_12_and_the_shipped_copy_is_in_step() -> None:
    schema = rule_file_schema()
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert json.loads((ROOT / "rules" / "schema.json").read_text()) == schema, \
        "rules/schema.json is stale: prepr-automation schema > rules/schema.json"
    printed = CliRunner().invoke(main, ["schema"])
    assert printed.exit_code == 0 and json.loads(printed.stdout) == schema


@pytest.mark.parametrize("path", VALID, ids=lambda p: str(p.relative_to(ROOT)))
def test_valid_files_pass(path: Path) -> None:
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in VALIDATOR.iter_errors(_data(path))]
    assert errors == []


def test_shipped_rule_files_name_the_schema() -> None:
    for path in VALID:
        if path.parent == ROOT / "rules":
            assert path.read_text().startswith("# yaml-language-server: $schema=schema.json\n"), path


def _path(parts) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else ("." if out else "") + str(part)
    return out


@pytest.mark.parametrize("name", STRUCTURAL)
def test_structural_errors_of_invalid_files_are_rejected(name: str) -> None:
    """Each listed error is found at its key path (a missing key: at its mapping; an unknown
    action: at its list entry, where the oneOf of actions fails)."""
    found: set[str] = set()
    pending = list(VALIDATOR.iter_errors(_data(DATA / "invalid" / name)))
    while pending:  # errors under anyOf / oneOf carry the alternatives' errors as their context
        error = pending.pop()
        found.add(_path(error.absolute_path))
        if error.validator == "additionalProperties":  # reported at the mapping: name the keys
            known = error.schema.get("properties", {})
            found.update(_path([*error.absolute_path, key]) for key in error.instance if key not in known)
        pending.extend(error.context or ())
    missing = [p for p in STRUCTURAL[name] if p not in found]
    assert not missing, (missing, sorted(found))
