"""Footprint benchmark: the formation on a Redis with a managed plan's limits, the real corpus replayed.

For each plan (BENCH_FOOTPRINT_PLANS, default "mini,premium-0"): a redis-server with the plan's
`maxmemory` (noeviction) and `maxclients`, the sandbox, the Procfile's web and worker with
default settings (HISTORY_MAX_BYTES unset: half of maxmemory), and BENCH_FOOTPRINT_N deliveries
of the corpus (default: all 14,256) posted as Prepr posts them. Reported:
- bytes per delivery: Redis' used_memory after the first CHECKPOINT deliveries were processed,
  less what it used before, over CHECKPOINT (all-in: dedupe marks, traces, index, counts, item
  state), and by key family (MEMORY USAGE);
- peak connections of the formation (CLIENT LIST, by process), refused connections;
- deliveries held: events the console still lists at the end, and the budget's estimate;
- whether anything failed: a non-2xx answer, a process that exited, an item left untagged.
Rewrites the `## Footprint` section of RESULTS.md.
"""
from __future__ import annotations

import datetime
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks import _corpus, _plan, _report

HEADING = "## Footprint"
N = int(os.environ.get("BENCH_FOOTPRINT_N", "14256"))
PLANS = os.environ.get("BENCH_FOOTPRINT_PLANS", "mini,premium-0").split(",")
CHECKPOINT = min(2000, N)
MB = 1024 ** 2
GOAL = 1024


@dataclass
class Figures:
    plan: _plan.Plan
    per_delivery: float = 0.0
    families: dict[str, float] = field(default_factory=dict)
    peak_clients: int = 0
    by_process: dict[str, int] = field(default_factory=dict)
    refused: int = 0
    peak_memory: int = 0
    held: int = 0
    estimate: int = 0
    budget: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    untagged: int = 0
    answered_503: int = 0  # deliveries refused while Redis was full, each sent again (as Prepr does)
    exited: str = ""
    seconds: float = 0.0


def families(client: object, sample: int = 20000) -> Counter:
    """Bytes per key family (`pa:trace`, `pa:seen`, …), by MEMORY USAGE of every key (up to `sample`)."""
    sizes: Counter = Counter()
    for n, key in enumerate(client.scan_iter(count=1000)):  # type: ignore[attr-defined]
        if n >= sample:
            break
        name = key.decode(errors="replace")
        family = ":".join(name.split(":")[:2]) if name.startswith("pa:") else name.split(":")[0][:24]
        sizes[family] += client.memory_usage(key) or 0  # type: ignore[attr-defined]
    return sizes


def run(plan: _plan.Plan, work: Path) -> Figures:
    out = Figures(plan)
    stack = _plan.Formation(work, plan)
    try:
        from prepr_automation import budget, history

        events = _plan.corpus(N)
        tagged = stack.seed(events)
        time.sleep(2)
        base = int(stack.client.info("memory")["used_memory"])
        sampler = _plan.Sampler(stack.client)
        began = time.monotonic()
        try:
            out.statuses = stack.post(events[:CHECKPOINT])
            stack.settle(600)
            used = int(stack.client.info("memory")["used_memory"])
            out.per_delivery = (used - base) / CHECKPOINT
            out.families = {k: v / CHECKPOINT for k, v in families(stack.client).most_common(8)}
            for status, n in stack.post(events[CHECKPOINT:]).items():
                out.statuses[status] = out.statuses.get(status, 0) + n
            stack.settle(900)
        except RuntimeError as exc:  # a process exited
            out.exited = str(exc)
        finally:
            sampler.stop()
        out.seconds = time.monotonic() - began
        out.peak_clients, out.by_process, out.peak_memory = sampler.peak_clients, sampler.per_name, sampler.peak_memory
        out.refused = int(stack.client.info("stats")["rejected_connections"])
        out.answered_503 = stack.refused
        out.held = int(stack.client.zcard(history.INDEX))
        out.estimate = int(stack.client.get(budget.TOTAL) or 0)
        out.budget = plan.maxmemory // 2
        out.untagged = len(tagged - stack.tagged())
    finally:
        stack.close()
    return out


def roles(by_process: dict[str, int]) -> str:
    """`pa-web-123: 2, pa-web-124: 2, pa-celery-99: 8, pa-worker-99: 6` -> "web 2 + 2, worker 8 + 6 (Celery + store)"."""
    web = [n for name, n in sorted(by_process.items()) if name.startswith("pa-web-")]
    celery = sum(n for name, n in by_process.items() if name.startswith("pa-celery-"))
    store = sum(n for name, n in by_process.items() if name.startswith("pa-worker-"))
    return f"web {' + '.join(map(str, web)) or 0}, worker {celery} + {store} (Celery + store)"


def section(rows: list[Figures], described: str) -> str:
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [HEADING, "", f"One run of `python -m benchmarks.footprint` (part of `make bench`), {now}.",
             f"Machine: {described}.", "",
             f"Per plan: a redis-server with the plan's maxmemory (`noeviction`) and maxclients, the sandbox at zero "
             f"latency, the Procfile's web (2 gevent processes) and worker (32 threads) with default settings "
             f"(HISTORY_MAX_BYTES unset: half of maxmemory), {N:,} corpus deliveries (all event types; fresh ids, "
             f"recent created_on) posted over HTTP by 8 senders (a 503 sent again after a second, as Prepr retries), one rule tagging every publication "
             f"created/changed/published. Bytes per delivery: used_memory after the first {CHECKPOINT:,} were "
             "processed, less before, over them (all-in).", "",
             "| plan | deliveries | bytes/delivery | peak connections | by process | refused | peak memory MB "
             "| listed at the end | history estimate MB / budget | 503 (retried) | final non-2xx | untagged | exited |",
             "|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        non2xx = sum(n for s, n in r.statuses.items() if not 200 <= s < 300)
        lines.append(f"| {r.plan.name} ({r.plan.maxmemory // MB} MB / {r.plan.maxclients}) | {sum(r.statuses.values()):,} "
                     f"| {r.per_delivery:,.0f} | {r.peak_clients} | {roles(r.by_process)} | {r.refused} "
                     f"| {r.peak_memory / MB:.1f} | {r.held:,} | {r.estimate / MB:.1f} / {r.budget / MB:.1f} | {r.answered_503} "
                     f"| {non2xx} "
                     f"| {r.untagged} | {r.exited or 'none'} |")
    if rows:
        worst = max(r.per_delivery for r in rows)
        lines += ["", f"Goal (issue 23): ≤ {GOAL:,} bytes per delivery all-in — " + ("met" if worst <= GOAL else "NOT met")
                  + f" ({worst:,.0f}); ≤ the plan's connections, nothing refused, no process exits, every event "
                  "processed — " + ("met" if all(r.peak_clients <= r.plan.maxclients and not r.refused and not r.exited
                                                 and not r.untagged for r in rows) else "NOT met") + "."]
        lines += ["", f"Where the bytes of a delivery go ({rows[0].plan.name}, MEMORY USAGE per key family over the "
                  f"first {CHECKPOINT:,}; `pa:writes` is the loop guard's, gone after 11 minutes):", "",
                  " | ".join(f"`{k}` {v:,.0f}" for k, v in rows[0].families.items()) + "."]
    return "\n".join(lines) + "\n"


def main() -> list[Figures]:
    if not _corpus.FIXTURE.exists():
        print(f"footprint: no corpus at {_corpus.FIXTURE}; skipped")
        return []
    described, rows = _report.machine(), []
    for name in PLANS:
        work = Path(tempfile.mkdtemp(prefix=f"bench-footprint-{name}-"))
        print(f"footprint: {name}, {N:,} deliveries; logs in {work}", flush=True)
        figures = run(_plan.PLANS[name], work)
        rows.append(figures)
        print(f"  {name}: {figures.per_delivery:,.0f} B/delivery, peak {figures.peak_clients} connections "
              f"({roles(figures.by_process)}), {figures.held:,} listed, statuses {figures.statuses}, "
              f"untagged {figures.untagged}, exited {figures.exited or 'none'}, {figures.seconds:.0f} s", flush=True)
        if not figures.exited:
            shutil.rmtree(work, ignore_errors=True)
    text = section(rows, described)
    print(text)
    _report.write_section(text, HEADING)
    if any(r.exited or r.untagged or r.refused or any(not 200 <= s < 300 for s in r.statuses) for r in rows):
        print("footprint: something failed (see above)", file=sys.stderr)
    return rows


if __name__ == "__main__":
    main()
