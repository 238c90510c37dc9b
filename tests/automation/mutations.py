"""Malformed rule files made from real ones: byte and line mutations of the shipped and fixture
rule files, plus the fragments hostile files are made of. Shared by the hypothesis fuzz
(test_fuzz_rules.py) and the long run (`make fuzz-rules`, benchmarks/fuzz_rules.py)."""
from __future__ import annotations

import copy
import io
import random
import re
from pathlib import Path
from typing import Any, Sequence

from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parent.parent.parent
SEEDS: list[bytes] = [p.read_bytes() for p in sorted(
    [*(ROOT / "rules").glob("*.yaml"), *(ROOT / "tests" / "rules").rglob("*.yaml"),
     ROOT / "tests" / "automation" / "cases" / "rules.yaml"])]
LINES: list[bytes] = sorted({line for seed in SEEDS for line in seed.splitlines(keepends=True)})
FRAGMENTS: list[bytes] = [
    b"\x00", b"\x01", b"\x1b[0m", b"\x7f", b"\xff\xfe", b"\xc3\x28", b"\xed\xa0\x80", b"\xef\xbb\xbf",
    b"\t", b"\r", b"\n", b"  ", b"- ", b": ", b"? ", b"{", b"}", b"[", b"]", b",", b"'", b'"', b"|", b">",
    b"&a ", b"*a", b"<<: *a\n", b"!!python/object/apply:os.system ['true']", b"!!binary aGk=", b"!!set {a}",
    b"%YAML 1.1\n", b"---\n", b"...\n", b"~", b"null", b".inf", b"-.nan", b"1e309", b"0x1F", b"2024-13-45",
    b"9" * 5000, b"[" * 200, b"{a: " * 100, b"a" * 10_000, b"\xf0\x9f\x98\x80" * 100,
    b"on:", b"do:", b"when:", b"tests:", b"rules:", b"version: 2", b"id: x", b"id: same",
    b"- add_tags: [x]", b"- auto_tag: {vocabulary: {x: [y]}, match: stem}", b"- update: {title: x}",
    b"{{ 10**100000 }}", b"{{ 'a' * 10**10 }}", b"{{ item.clear() }}", b"{{ range(10**9)|list }}",
    b"{% for x in range(10**9) %}x{% endfor %}", b"{{", b"{%", b"'{{ x }'",
    b"matches: 'a{4294967296}'", b"matches: '(a+)+$'", b"matches: '['", b"fz: ''",
    b"vocabulary_file: ../../../etc/passwd", b"vocabulary_file: /dev/zero",
]
OPS = ("flip", "delete", "duplicate", "insert", "line", "drop_line", "swap_lines", "data", "data")
# for "data": values and keys put into the parsed file, so mutants get past YAML into the validators
VALUES: list = [
    None, True, 0, -1, 2**63, 1.5, float("inf"), "", "x", "x" * 300, "{{ item.id }}", "{{ 10**100000 }}",
    "{{ x.y.z }}", "{% if %}", "{{ item.clear() }}", "a{4294967296}", "(", "(a+)+$", [], {}, [None],
    {"eq": "x"}, {"in": []}, {"matches": "["}, {"fz": ""}, {"changed": True}, {"gt": "2024-01-01"},
    ["a", 1, None], {"any": []}, {"not": None}, {"all": [{"tags": {"in": ["a"]}}]}, "content_item.*", "*",
    "asset.deleted", "person.x", {"vocabulary": {"x": None}}, {"vocabulary": {"x": ["a" * 201]}},
    {"tags": [{"eq": "x", "param": "slug"}]}, {"add_tags": ["y"]}, {"update": {"id": 1}},
    {"bulk_put": {"filter": {"q": {"fz": "x"}}, "set": {"a": 1}}}, {"track_event": {"label": "L"}},
    {"auto_tag": {"vocabulary": {"t": ["w"]}, "match": "stem", "language": "nl"}},
    {"name": "t", "event": {"event": "content_item.changed", "payload": {"id": "p"}}, "expect": {"calls": []}},
]
KEYS = ["id", "on", "do", "when", "tests", "rules", "version", "stop", "dry_run", "throttle", "enabled",
        "disabled", "expect", "fired", "calls", "item", "event", "payload", "match", "fields", "x",
        "items.*.title.body", "event.performed_by", "title", "q", "param", "max_items", "vocabulary_file"]


def mutate(seed: bytes, ops: Sequence[tuple[str, int, int]]) -> bytes:
    """Apply (op, a, b) steps; a and b pick positions, spans and fragments by modulo."""
    data = bytearray(seed)
    for op, a, b in ops:
        n = max(len(data), 1)
        at = a % n
        if op == "flip":
            if data:
                data[at] = b % 256
        elif op == "delete":
            del data[at:at + 1 + b % 64]
        elif op == "duplicate":
            data[at:at] = data[at:at + 1 + b % 256]
        elif op == "insert":
            data[at:at] = FRAGMENTS[b % len(FRAGMENTS)]
        elif op == "data":
            data = bytearray(mutate_data(bytes(data), random.Random(a * 2**20 + b)))
        else:
            lines = bytes(data).splitlines(keepends=True) or [b""]
            i = a % len(lines)
            if op == "line":  # splice in a line of another real file
                lines.insert(i, LINES[b % len(LINES)])
            elif op == "drop_line":
                del lines[i]
            else:
                j = b % len(lines)
                lines[i], lines[j] = lines[j], lines[i]
            data = bytearray(b"".join(lines))
    return bytes(data)


def _slots(node: Any, out: list) -> list:
    """Every (container, key) pair in a parsed file, depth first."""
    if isinstance(node, dict):
        for key, value in node.items():
            out.append((node, key))
            _slots(value, out)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            out.append((node, index))
            _slots(value, out)
    return out


def mutate_data(seed: bytes, rng: random.Random) -> bytes:
    """Parse, change 1-3 values or keys (set, delete, add), write back; unparsable seeds as they are."""
    yaml = YAML(typ="safe", pure=True)
    try:
        data = yaml.load(seed)
    except Exception:  # noqa: BLE001 - a broken seed stays broken
        return seed
    for _ in range(rng.randint(1, 3)):
        slots = _slots(data, [])
        if not slots:
            break
        container, key = rng.choice(slots)
        action = rng.randrange(3)
        if action == 0:
            container[key] = copy.deepcopy(rng.choice(VALUES))
        elif action == 1:
            del container[key]
        elif isinstance(container, dict):
            container[rng.choice(KEYS)] = copy.deepcopy(rng.choice(VALUES))
        else:
            container.insert(key, copy.deepcopy(rng.choice(VALUES)))
    out = io.StringIO()
    yaml.dump(data, out)
    return out.getvalue().encode()


def random_case(rng: random.Random) -> tuple[bytes, list[tuple[str, int, int]]]:
    seed = rng.choice(SEEDS)
    kinds = ("data",) if rng.random() < 0.5 else OPS  # half of them stay valid YAML
    ops = [(rng.choice(kinds), rng.randrange(2**20), rng.randrange(2**20)) for _ in range(rng.randint(1, 6))]
    return seed, ops


ERROR_LINE = re.compile(rb"^(?P<file>[^\n]+?):(?P<line>[1-9]\d*):(?P<col>[1-9]\d*): [^\n]+$")


def check_file(path: Path) -> tuple[bool, list[str]]:
    """Load one file (and, if it loads, evaluate events and its tests): (loaded, problems found).
    A RuleSetError whose every error is `path:line:col: message` is the good outcome."""
    from automation import RuleSetError, evaluate, load_rules
    from automation.ruletests import run_case

    problems = []
    try:
        ruleset = load_rules(path)
    except RuleSetError as exc:
        for error in exc.errors:
            line = str(error).encode("utf-8", "backslashreplace")
            if not ERROR_LINE.match(line) or "\n" in str(error):  # a vocabulary file's errors name it
                problems.append(f"malformed error line: {str(error)[:200]!r}")
        if not exc.errors:
            problems.append("RuleSetError without errors")
        return False, problems
    item = {"id": "p1", "model": {"body": "Article"}, "locales": ["en-GB", "nl-NL"], "tags": [],
            "items": {"en-GB": {"title": {"body": "Football"}, "tags": {"items": []}},
                      "nl-NL": {"title": {"body": "Verkiezingen"}}}}
    for event in ("content_item.changed", "content_item.published", "asset.created", "person.changed"):
        evaluate(ruleset, {"id": "e", "event": event, "payload": {"id": "p1"}}, item, now=0)
    for case in ruleset.cases:
        run_case(ruleset, case)
    return True, problems
