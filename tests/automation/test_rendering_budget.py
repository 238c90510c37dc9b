"""The rendering budget (SPEC §8): every template bomb the outside probe found, and the other ways a
template can make text, ends as a clear error of its rule in well under 2 s with memory kept small;
no rendered value in a trace exceeds MAX_RENDERED_BYTES; ordinary templates render as before."""
from __future__ import annotations

import json
import time
import tracemalloc
from pathlib import Path

import pytest

from automation import budget, evaluate, load_rules

HEAD = "version: 1\nrules:\n  - id: r\n    on: content_item.changed\n"
SIZE = "template output exceeds 102400 bytes"
SLOW = "template took longer than 1.0 s"
BOMBS = {  # template: the error it must end in
    "center": ("{{ 'x'|center(10**8) }}", SIZE),
    "nested range loops": ("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", SLOW),
    "nested loops into a set block": ("{% set s %}{% for i in range(100000) %}{% for j in range(100000) %}{{ '' }}"
                                      "{% endfor %}{% endfor %}{% endset %}", SLOW),
    "loops writing text": ("{% for i in range(100000) %}{% for j in range(100000) %}xxxxxxxx{% endfor %}"
                           "{% endfor %}", ""),
    "join": ("{{ range(100000)|join('x'*50000) }}", SIZE),
    "join of shared references": ("{{ (['x'*1000] * 100000)|join }}", SIZE),
    "replace": ("{{ ('x'*50000)|replace('x', 'x'*50000) }}", SIZE),
    "format filter": ("{{ ('%(a)9999s' * 10000)|format(a=1) }}", SIZE),
    "format filter width": ("{{ '%099999999d'|format(1) }}", SIZE),
    "% operator": ("{{ ('%(a)9999s' * 10000) % {'a': 1} }}", SIZE),
    "* repeat": ('{{ "x" * 10**9 }}', SIZE),
    "printing shared references": ("{{ ['x'*50000] * 100000 }}", SIZE),
    "str.center": ("{{ 'x'.center(10**8) }}", SIZE),
    "str.format width": ("{{ '{:>999999999}'.format(1) }}", SIZE),
    "str.format fields": ("{{ ('{0:>9999}' * 1000).format(1) }}", SIZE),
    "str.join": ("{{ ('x'*50000).join(range(1000)|map('string')) }}", SIZE),
    "indent": ("{{ ('x\\n'*50000)|indent(1000) }}", SIZE),
    "wordwrap": ("{{ ('x '*50000)|wordwrap(1, wrapstring='y'*1000) }}", SIZE),
    "batch fill": ("{{ range(10)|batch(10**9, 'x')|list }}", SIZE),
    "slice": ("{{ range(10)|slice(10**9)|list }}", SIZE),
    "tojson indent": ("{{ {'a': 'x'}|tojson(indent=10**8) }}", "tojson indents at most 16"),
    "lipsum": ("{{ lipsum(10**6) }}", SIZE),
    "~ doubling": ("{% set a = 'x'*50000 %}{% set a = a ~ a %}{% set a = a ~ a %}{{ a }}", SIZE),
    "+ doubling": ("{% set a = 'x'*60000 %}{{ a + a }}", SIZE),
    "int.to_bytes": ("{{ (1).to_bytes(10**9, 'big') }}", SIZE),
    "expandtabs": ("{{ 'x\\ty'.expandtabs(10**8) }}", SIZE),
    "sum of lists": ("{{ ([['x'*1000]*1000]*1000)|sum(start=[]) }}", SIZE),
    "map center": ("{{ range(100000)|map('center', 10**8)|list }}", SIZE),
    "multibyte output": ("{{ 'é' * 60000 }}", SIZE),
    "strftime": ("{{ now.strftime('%c' * 50000) }}", SIZE),
    "a date's format spec": ("{{ ('{:' ~ '%c' * 10000 ~ '}').format(now) }}", SIZE),
    "translate": ("{{ 'a'.translate({97: 'x'*50000}) }}", "translate() is not allowed"),
}


def _run(tmp_path: Path, template: str, item: dict | None = None):
    path = tmp_path / "r.yaml"
    path.write_text(HEAD + f"    do: [{{update: {{label: {json.dumps(template)}}}}}]\n")
    return evaluate(load_rules(path), {"event": "content_item.changed", "payload": {"id": "1"}}, item)


@pytest.mark.parametrize("name", BOMBS)
def test_every_bomb_is_a_clear_rule_error_fast_and_small(tmp_path: Path, name: str) -> None:
    template, error = BOMBS[name]
    tracemalloc.start()
    started = time.perf_counter()
    try:
        result = _run(tmp_path, template)
    finally:
        took = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    rule = result.rules[0]
    assert rule.status == "error" and not result.plan, rule
    assert error in rule.errors[0] and ("exceeds" in rule.errors[0] or "longer" in rule.errors[0]
                                        or "not allowed" in rule.errors[0] or "at most" in rule.errors[0])
    assert took < 2.0, f"{name}: {took:.2f} s"
    assert peak < 64 << 20, f"{name}: {peak / 1e6:.0f} MB"
    assert len(json.dumps(result.to_json())) < 4096  # the trace of a bomb is small


@pytest.mark.parametrize("template, expected", [
    ("{{ item.title|upper }}: {{ range(3)|join(', ') }}", "HELLO: 0, 1, 2"),
    ("{{ '%05d'|format(42) }} {{ '{:>4}'.format('a') }} {{ '%s-%s' % ('a', 'b') }}", "00042    a a-b"),
    ("{% for t in item.tags %}{{ t.body }}{% if not loop.last %},{% endif %}{% endfor %}", "a,b"),
    ("{{ item.title ~ '!' }} {{ [1, 2] + [3] }} {{ 'ab' * 2 }}", "Hello! [1, 2, 3] abab"),
    ("{{ item.title|center(9) }}|{{ 'a b c'|wordwrap(1) }}|{{ 'x\ny'|indent(2, true) }}", "  Hello  |a\nb\nc|  x\n  y"),
    ("{{ 'x' * 102400 }}", "x" * 102400),
    ("{{ '{:%Y}'.format(now)|length }} {{ now.strftime('%m')|length }} {{ '{0} {1:>3}'.format('a', 3) }}", "4 2 a   3"),
])
def test_ordinary_templates_render_as_before(tmp_path: Path, template: str, expected: str) -> None:
    item = {"id": "1", "title": "Hello", "tags": [{"body": "a"}, {"body": "b"}]}
    result = _run(tmp_path, template, item)
    assert result.rules[0].status == "fired", result.rules[0].errors
    assert result.rules[0].rendered[0]["fragment"]["label"] == expected


def test_one_byte_over_the_limit_is_refused_and_the_limit_is_a_setting(tmp_path: Path) -> None:
    assert SIZE in _run(tmp_path, "{{ 'x' * 102400 }}y").rules[0].errors[0]
    try:
        budget.configure(max_bytes=1000)
        result = _run(tmp_path, "{{ 'x' * 1001 }}")
        assert "template output exceeds 1000 bytes" in result.rules[0].errors[0]
        assert _run(tmp_path, "{{ 'x' * 1000 }}").rules[0].status == "fired"
    finally:
        budget.configure(max_bytes=budget.MAX_RENDERED_BYTES)


def test_a_large_item_value_is_bounded_in_the_output_and_the_trace(tmp_path: Path) -> None:
    """Output cannot grow past the limit even when the text comes from the item itself."""
    result = _run(tmp_path, "{{ item.body }}{{ item.body }}", {"id": "1", "body": "b" * 60000})
    assert result.rules[0].status == "error" and SIZE in result.rules[0].errors[0]
    assert len(json.dumps(result.to_json())) < 4096
