"""`prepr-automation test`: rule tests in rule files, run offline by the real engine."""
from __future__ import annotations

import json
import re
from pathlib import Path
from xml.etree import ElementTree

from click.testing import CliRunner

from cli import main

ROOT = Path(__file__).resolve().parent.parent.parent
FAILING = ROOT / "tests" / "rules" / "tests" / "failing.yaml"


def test_the_shipped_rules_pass_their_own_tests() -> None:
    """make test fails here when a shipped rule stops doing what its file's tests say."""
    result = CliRunner().invoke(main, ["test", str(ROOT / "rules")])
    lines = result.stdout.splitlines()
    cases = [line for line in lines if line.endswith((" PASSED", " FAILED"))]
    assert result.exit_code == 0, result.stdout
    files = {line.split("::")[0] for line in cases}
    assert len(cases) >= 15 and len(files) == 6, files  # every shipped rule file carries tests
    assert re.fullmatch(rf"=+ {len(cases)} passed in \d+\.\d\ds =+", lines[-1]), lines[-1]


def test_failures_are_reported_with_their_place_and_exit_1(tmp_path: Path) -> None:
    junit = tmp_path / "rules.xml"
    result = CliRunner().invoke(main, ["test", str(FAILING), "--junit-xml", str(junit)])
    assert result.exit_code == 1
    out = result.stdout
    assert [line.rsplit(" ", 1)[1] for line in out.splitlines() if "::" in line and line.endswith("ED")] == \
        ["PASSED", "FAILED", "FAILED", "FAILED"]
    assert f"{FAILING}:17: calls differ\n  expected:\n    PUT /publications/p1 " \
           '{"items": {"en-GB": {"tags": {"items": [{"body": "tennis"}]}}}}\n  planned:\n    PUT /publications/p1 ' \
           '{"items": {"en-GB": {"tags": {"items": [{"body": "sport"}]}}}}' in out
    assert f"{FAILING}:21: expected 'tag-sport' to fire; it was not_matched" in out
    assert f"{FAILING}:24: expected 'track' not to fire; it fired" in out
    assert "  planned:\n    POST /events" in out
    assert re.search(r"=+ 3 failed, 1 passed in \d+\.\d\ds =+$", out.strip())

    suite = ElementTree.parse(junit).getroot().find("testsuite")
    assert suite is not None and suite.get("tests") == "4" and suite.get("failures") == "3"
    failed = {c.get("name"): c.find("failure") for c in suite.iter("testcase")}
    assert failed["passes"] is None and failed["wrong tag"] is not None
    assert failed["does not fire"].text == f"{FAILING}:21: expected 'tag-sport' to fire; it was not_matched"
    assert {c.get("line") for c in suite.iter("testcase")} == {"12", "17", "21", "24"}


def test_a_rule_set_that_does_not_validate_runs_no_test(tmp_path: Path) -> None:
    bad = ROOT / "tests" / "rules" / "invalid" / "cases.yaml"
    result = CliRunner().invoke(main, ["test", str(bad)])
    assert result.exit_code == 1 and "no rule 'b' in this file" in result.stdout
    assert "PASSED" not in result.stdout


def test_validate_json_and_github_formats(monkeypatch) -> None:
    monkeypatch.chdir(ROOT / "tests" / "rules" / "invalid")
    expected = Path("cases.yaml.expected").read_text().splitlines()
    as_json = CliRunner().invoke(main, ["validate", "cases.yaml", "--json"])
    assert as_json.exit_code == 1
    out = json.loads(as_json.stdout)
    assert out["ok"] is False
    assert [f"{e['file']}:{e['line']}:{e['col']}: {e['path']}: {e['message']}" for e in out["errors"]] == expected
    github = CliRunner().invoke(main, ["validate", "cases.yaml", "--format", "github"])
    assert github.exit_code == 1
    assert github.stdout.splitlines()[0] == ("::error file=cases.yaml,line=9,col=22::tests[0].expect.fired[0]: "
                                             "no rule 'b' in this file")
    ok = CliRunner().invoke(main, ["validate", str(ROOT / "rules"), "--json"])
    assert ok.exit_code == 0 and json.loads(ok.stdout)["tests"] >= 15

