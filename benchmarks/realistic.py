"""The worker under real conditions: Prepr 200 ms away, counting every window of its rate limit.

The sandbox runs in remote mode (`--latency-ms 200 --rate-limit "35/second;800/minute"`, Prepr's
published windows; 429 beyond any of them); the worker is the Procfile's own worker line with the
default settings (PREPR_RATE_LIMIT, COALESCE_SECONDS unset). Deliveries go through the receiver's
own intake (`Intake.accept`), as the web process queues them. Phases:

a. Bursts (a bulk-webhook trigger): N slim `content_item.changed` events, each for its own article
   that needs 1 GET + 1 PUT, staged while the worker idles and released in one RENAME. The clock
   runs from there to the answer of the last PUT. The fastest schedule is computed from Prepr's
   windows: every call as early as each moving window allows, plus one latency for the last answer.
b. Replay: the first 600 publication.* deliveries of the real corpus (benchmarks/_corpus.py:
   gaps up to 5 s kept, longer ones cut short), against their items seeded in the sandbox; some
   items are retitled by an editor between their last two events, which must show in their tags.

Every phase checks every item's final state and counts the automation's calls in the sandbox's
request log (an editor's writes are not the token's). Environment: BENCH_REALISTIC_REDIS_URL
(default db 10 of the local Redis, flushed per phase), BENCH_REALISTIC_BURSTS ("300,600"),
BENCH_REALISTIC_REPLAY (600), BENCH_REALISTIC_DIALECTS ("publications,content_items": every phase against a
sandbox speaking each dialect alone, side by side). `python -m benchmarks.realistic --pools`
runs the 300-event burst once per worker pool (prefork, threads, gevent) side by side.
"""
from __future__ import annotations

import datetime
import importlib.util
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import redis

from benchmarks import _corpus, _report, _stack
from benchmarks._remote import COALESCE, LATENCY_MS, PREPR_WINDOWS, REDIS_URL, Bench, Result

HEADING = "## Realistic"
BURSTS = tuple(int(n) for n in os.environ.get("BENCH_REALISTIC_BURSTS", "300,600").split(","))
REPLAY = int(os.environ.get("BENCH_REALISTIC_REPLAY", "600"))
# Each phase against a sandbox speaking one dialect alone (the worker finds it out, PREPR_API unset)
DIALECTS = tuple(os.environ.get("BENCH_REALISTIC_DIALECTS", "publications,content_items").split(","))
GOALS = {"burst": 0.9, "get": 0.65, "lag": 10.0}
POOLS = {  # --pools: the Procfile's line with another pool; concurrency sized for waiting, not cores
    "prefork -c 4": "--pool prefork --concurrency 4", "prefork -c 16": "--pool prefork --concurrency 16",
    "threads -c 32": "--pool threads --concurrency 32", "gevent -c 64": "--pool gevent --concurrency 64"}


def section(results: list[Result], described: str, worker: str) -> str:
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [HEADING, "", f"One run of `python -m benchmarks.realistic` (part of `make bench`), {now}.",
             f"Machine: {described}.", "",
             f"Prepr: the sandbox in remote mode, {LATENCY_MS} ms per call, windows `{PREPR_WINDOWS}` per token "
             "(moving; 429 + Retry-After beyond). Worker: the Procfile's line, `" + worker.split(":", 1)[1].strip()
             + "`, default settings. Deliveries queued by the receiver's intake.", "",
             "| phase | deliveries | seconds | events/s | fastest schedule | ratio | GET/delivery | PUT/delivery "
             "| minimum PUT/delivery | 429 | lag s | wrong items |", "|---|" + "---:|" * 11]
    for r in results:
        burst = bool(r.fastest)
        lines.append(f"| {r.name} | {r.deliveries} | {r.seconds:.1f} | "
                     + (f"{r.deliveries / r.seconds:.1f} | {r.fastest:.1f} s = {r.deliveries / r.fastest:.1f}/s | "
                        f"{r.fastest / r.seconds:.2f} | " if burst else "n/a | n/a | n/a | ")
                     + f"{r.gets / r.deliveries:.2f} | {r.puts / r.deliveries:.2f} | {r.min_puts / r.deliveries:.2f} "
                     f"| {r.refused} | {'' if burst else f'{r.lag:.1f}'} | {len(r.wrong) + r.untraced} |")
    lines += ["", "Goals:"]
    for r in results:
        if r.fastest:
            met = r.fastest / r.seconds >= GOALS["burst"] and r.refused == 0 and not r.wrong and not r.untraced
            lines.append(f"- {r.name}: ≥ {GOALS['burst']}× the fastest schedule, 0 × 429, every item right — "
                         + ("met" if met else "NOT met") + f" ({r.fastest / r.seconds:.2f}×, {r.refused} × 429).")
        else:
            checks = {f"≤ {GOALS['get']} GET/delivery": r.gets / r.deliveries <= GOALS["get"],
                      "PUT at the minimum": r.puts <= r.min_puts, "0 wrong items": not r.wrong and not r.untraced,
                      f"lag ≤ {GOALS['lag']:g} s": r.lag <= GOALS["lag"], "0 × 429": r.refused == 0}
            lines.append(f"- {r.name}: " + "; ".join(f"{k} — {'met' if ok else 'NOT met'}" for k, ok in checks.items())
                         + f" ({r.gets / r.deliveries:.2f} GET, {r.puts} PUT for a minimum of {r.min_puts}).")
    plan = _corpus.timeline(REPLAY)
    lines += ["", f"Replay: {REPLAY} deliveries for {len(plan.items)} items over {plan.original_span / 3600:.1f} h of "
              f"the corpus, replayed in {plan.span:.0f} s (gaps ≤ {_corpus.KEEP:g} s kept); {len(plan.retitles)} items "
              f"retitled by an editor before their last event. Minimum PUT: one per item, two for a retitled item "
              f"whose earlier events formed a run due before the retitle (COALESCE_SECONDS {COALESCE:g} s, "
              "sliding, capped at four windows). Fastest schedule: "
              "2 calls per event, each sent as early as every window of Prepr allows, plus one latency.", ""]
    return "\n".join(lines)


def dialects(results: list[Result]) -> str:
    """Today's dialect beside the seeds': time and calls of each phase, side by side in one run."""
    by = {r.name: r for r in results}
    lines = []
    for r in results:
        if not r.name.startswith("content_items: "):
            continue
        seeds = by.get(r.name.replace("content_items: ", "publications: "))
        if seeds is None:
            continue
        phase = r.name.split(": ", 1)[1]
        timed = (f"{r.seconds / seeds.seconds:.2f}× the time" if r.fastest else f"lag {r.lag:.1f} s vs {seeds.lag:.1f} s")
        lines.append(f"- {phase}: content_items {timed} of publications; GET {r.gets} vs {seeds.gets}, "
                     f"PUT {r.puts} vs {seeds.puts}, 429 {r.refused} vs {seeds.refused}.")
    if not lines:
        return ""
    return "\n".join(["", "Dialects (goal: content_items within 5 % of publications, same GET and PUT counts):",
                      *lines, ""])


def worker_line(pool: str) -> str:
    """The Procfile's worker line with its pool and concurrency replaced by `pool`'s."""
    line = re.sub(r"\s--(pool|concurrency)[ =]\S+|\s-[Pc] \S+", "", _stack.procfile_worker())
    return f"{line} {POOLS[pool]}"


def compare_pools() -> None:
    """The 300-event burst once per pool, one sandbox, in turn; a Markdown table on stdout."""
    rows = []
    for pool in POOLS:
        if pool.startswith("gevent") and importlib.util.find_spec("gevent") is None:
            print(f"  {pool}: skipped (pip install gevent to compare it)")
            continue
        work = Path(tempfile.mkdtemp(prefix="bench-realistic-pools-"))
        bench = Bench(work, worker_line(pool))
        try:
            r = bench.burst(BURSTS[0], f"{pool}")
            rows.append(f"| {pool} | {r.deliveries / r.seconds:.1f} | {r.fastest / r.seconds:.2f} | {r.refused} "
                        f"| {len(r.wrong)} |")
        finally:
            bench.close()
            shutil.rmtree(work, ignore_errors=True)
    print("\n".join(["| pool | events/s | × fastest schedule | 429 | wrong |", "|---|---:|---:|---:|---:|", *rows]))


def main() -> list[Result]:
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        print(f"realistic: no Redis at {REDIS_URL} ({exc}); skipped")
        return []
    if not _corpus.FIXTURE.exists():
        print(f"realistic: no corpus at {_corpus.FIXTURE}; skipped")
        return []
    described, began = _report.machine(), time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="bench-realistic-"))
    ok = False
    print(f"realistic: bursts of {BURSTS} and a replay of {REPLAY}; logs in {work}", flush=True)
    with _stack.terminated_cleanly():
        bench: Bench | None = None
        results: list[Result] = []
        try:
            for api in DIALECTS:
                bench = Bench(work / api, api=api)
                results += [bench.burst(n, f"{api}: burst {n}") for n in BURSTS] + [bench.replay(REPLAY)]
                results[-1].name = f"{api}: replay"
                bench.close()
                bench = None
            ok = True
        finally:
            if bench is not None:
                bench.close()
            if ok:
                shutil.rmtree(work, ignore_errors=True)
            else:
                print(f"realistic: failed; logs kept in {work}", file=sys.stderr)
    print(f"realistic: {time.monotonic() - began:.0f} s in all", flush=True)
    text = section(results, described, _stack.procfile_worker()) + dialects(results)
    print(text)
    _report.write_section(text, HEADING)
    if any(r.wrong or r.untraced for r in results):
        raise SystemExit("realistic: some items ended wrong (see above)")
    return results


if __name__ == "__main__":
    compare_pools() if "--pools" in sys.argv[1:] else main()
