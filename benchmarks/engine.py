"""Rule engine benchmark (`python -m benchmarks.engine`): results in the `## Rule engine`
section of benchmarks/RESULTS.md (only that section is rewritten).

1. One event that matches one rule among 10, 1,000 and 10,000 rules: the whole engine path per
   event (fetch plan + evaluate + planned PUT) — goal: 1,000 rules < 1 ms/event and <= 3x the
   10-rule time. The other rules listen to other events (exact names and globs), as in a large
   rule set; the index must keep them out of the event's way.
2. auto_tag over a 2,000-word text with a 100- and a 10,000-term vocabulary — goal: < 2 ms and
   <= 2x the 100-term time; `match: word` and `match: stem` (Snowball stems of every word first,
   over a text of ~850 distinct words, as prose has) — both under 2 ms.
Ratios are measured side by side in one run (batches interleaved), on the same machine.
"""
from __future__ import annotations

import datetime as dt
import random
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

from automation import evaluate, load_rules
from benchmarks import _report
from automation.actions.auto_tag import AutoTag, Vocabulary
from automation.actions.base import PlanContext

HEADING = "## Rule engine"
CHANNELS = [{"id": "c-web", "slug": "web"}, {"id": "c-app", "slug": "app"}]
ENVELOPE = {"id": "e1", "event": "content_item.changed", "performed_by": {"id": "u1"},
            "payload": {"id": "p1", "created_on": "2024-01-01T00:00:00Z"}}
ITEM = {"id": "p1", "model": {"id": "m1", "body": "Article"}, "locales": ["en-GB"], "channels": [],
        "items": {"en-GB": {"title": {"body": "Late football winner"},
                            "content": {"body": "<p>A soccer derby at the stadium.</p>"},
                            "tags": {"items": [{"id": "t1", "body": "news", "slug": "news"}]}}}}
TARGET = """\
  - id: target
    on: [content_item.changed]
    when: {model: {in: [Article, News]}, title: {fz: football}, not: {tags: {in: [no-automation]}}}
    do:
      - add_tags: [sport]
      - assign_channels: [app]
"""


def rule_file(n: int) -> str:
    """n rules: one listens to the event; the others to other events (1 in 20 a glob)."""
    out = ["version: 1", "rules:", TARGET]
    for i in range(n - 1):
        on = f"person.group{i % 50}.*" if i % 20 == 0 else f"person.action-{i}"
        out.append(f"  - id: other-{i}\n    on: {on}\n    when: {{name: {{fz: x{i}}}}}\n"
                   f"    do:\n      - add_tags: [t{i}]\n")
    return "\n".join(out)


def timed(fn: Callable[[], object], repeat: int) -> float:
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - start) / repeat


def side_by_side(cases: dict[str, Callable[[], object]], repeat: int, rounds: int = 7) -> dict[str, float]:
    """Median seconds per call of each case, batches interleaved so drift hits all alike."""
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for fn in cases.values():
        timed(fn, max(1, repeat // 10))  # warm caches and the automaton
    for _ in range(rounds):
        for name, fn in cases.items():
            samples[name].append(timed(fn, repeat))
    return {name: statistics.median(values) for name, values in samples.items()}


def bench_matching() -> tuple[dict[str, float], dict[str, float]]:
    loads, cases = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in (10, 1_000, 10_000):
            path = Path(tmp) / f"rules{n}.yaml"
            path.write_text(rule_file(n))
            started = time.perf_counter()
            ruleset = load_rules(path)
            loads[str(n)] = time.perf_counter() - started
            assert len(ruleset.rules_for("content_item.changed")) == 1

            def one(rs=ruleset) -> object:
                rs.fetch_plan(ENVELOPE)
                result = evaluate(rs, ENVELOPE, ITEM, channels=CHANNELS, now=0)
                assert len(result.plan) == 1
                return result
            cases[str(n)] = one
    return side_by_side(cases, repeat=2000), loads


WORDS = re.findall(r"[a-z]+", "the match was played in front of a full stadium and the league leaders "
                   "scored late after a long spell of pressure from the visitors who had defended "
                   "well all afternoon while the coach watched from the touchline")


def text_of(words: int, rng: random.Random) -> str:
    body = " ".join(rng.choice(WORDS) for _ in range(words))
    return f"<p>{body}</p>"


def vocabulary(terms: int, rng: random.Random) -> dict[str, list[str]]:
    """`terms` distinct keywords, two per tag: the same 30 occur in the text whatever the size
    (so both sizes find the same tags), the rest are made-up words and phrases that do not."""
    present = sorted(set(WORDS))[:20] + [f"{a} {b}" for a, b in zip(WORDS[:10], WORDS[1:11])]
    keywords = list(dict.fromkeys(present))
    while len(keywords) < terms:
        word = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(4, 10)))
        keywords.append(word if rng.random() < 0.7 else f"{word} {rng.choice(WORDS)}")
        keywords = keywords if len(keywords) == len(set(keywords)) else list(dict.fromkeys(keywords))
    return {f"tag{i // 2}": keywords[i:i + 2] for i in range(0, terms, 2)}


def varied_text(words: int, rng: random.Random) -> str:
    """Prose-like variety: the fixed words plus 1,000 made-up ones (about 850 distinct in 2,000)."""
    pool = WORDS + ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 11)))
                    for _ in range(1000)]
    return "<p>" + " ".join(rng.choice(pool) for _ in range(words)) + "</p>"


def bench_auto_tag() -> tuple[dict[str, float], dict[str, int]]:
    rng = random.Random(5)
    cases, found = {}, {}
    for match, text in (("word", text_of(2000, rng)), ("stem", varied_text(2000, rng))):
        item = {"id": "p1", "locales": ["en-GB"], "items": {"en-GB": {"content": {"body": text}}}}
        ctx = PlanContext(item=item, envelope=ENVELOPE, resource="publication", item_id="p1",
                          locales=["en-GB"], channels=(), template_context={})
        for terms in (100, 10_000):
            action = AutoTag(Vocabulary(vocabulary(terms, rng)), ["content"], None, match, 10, "tags")
            ops, _ = action.plan(ctx)
            name = f"{match} {terms}"
            found[name] = len(ops[0].names) if ops else 0
            cases[name] = lambda a=action, c=ctx: a.plan(c)
    return side_by_side(cases, repeat=200), found


def main() -> None:
    match, loads = bench_matching()
    tag, found = bench_auto_tag()
    ms = {k: v * 1000 for k, v in match.items()}
    tms = {k: v * 1000 for k, v in tag.items()}
    r_match, r_tag = ms["1000"] / ms["10"], tms["word 10000"] / tms["word 100"]
    ok1 = ms["1000"] < 1 and r_match <= 3
    ok2 = tms["word 10000"] < 2 and r_tag <= 2 and tms["stem 10000"] < 2
    lines = [
        HEADING, "",
        f"Run {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC on {_report.machine()}. "
        "`python -m benchmarks.engine`; medians of 7 interleaved batches.", "",
        "Event matching one rule among N (fetch plan + evaluate + planned PUT, per event):", "",
        "| rules | ms/event | × 10-rule time | load + validate (s) |", "|---:|---:|---:|---:|",
        *(f"| {int(n):,} | {ms[n]:.3f} | {ms[n] / ms['10']:.2f} | {loads[n]:.2f} |" for n in ("10", "1000", "10000")),
        "", f"Goal: 1,000 rules < 1 ms/event and ≤ 3× the 10-rule time — "
        f"{'met' if ok1 else 'NOT met'} ({ms['1000']:.3f} ms, {r_match:.2f}×).", "",
        "auto_tag over a 2,000-word HTML text (normalise + scan + rank, max_tags 10; `stem`: every",
        "word reduced by the English Snowball stemmer first, over a text of ~850 distinct words):", "",
        "| match | vocabulary terms | ms/text | × 100-term time | tags found |", "|---|---:|---:|---:|---:|",
        *(f"| {m} | {int(n):,} | {tms[f'{m} {n}']:.3f} | {tms[f'{m} {n}'] / tms[f'{m} 100']:.2f} "
          f"| {found[f'{m} {n}']} |" for m in ("word", "stem") for n in ("100", "10000")),
        "", f"Goal: < 2 ms and ≤ 2× the 100-term time (word), < 2 ms (stem) — {'met' if ok2 else 'NOT met'} "
        f"(word {tms['word 10000']:.3f} ms, {r_tag:.2f}×; stem {tms['stem 10000']:.3f} ms).",
    ]
    text = "\n".join(lines)
    print(text)
    _report.write_section(text, HEADING)


if __name__ == "__main__":
    sys.exit(main())
