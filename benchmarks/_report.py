"""Turn the ingest loads into the `## Ingest` section of benchmarks/RESULTS.md.

Only that section is rewritten: other benchmarks own the rest of the file. The machine is
described next to the figures because on a shared 2-core box only the ratios travel.
"""
from __future__ import annotations

import datetime
import os
import platform
import re
from importlib import metadata
from pathlib import Path
from typing import Any

from benchmarks._load import percentile

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
HEADING = "## Ingest"
PACKAGES = ("flask", "werkzeug", "gunicorn", "celery", "kombu", "redis", "marshmallow", "orjson")
GOAL_RATE, GOAL_P99 = 1.5, 1.0  # issue 13: >= 1.5x send_task in req/s, p99 no worse than it


def summarise(targets: list[Any]) -> list[dict[str, Any]]:
    rows = []
    for t in targets:
        measured = sum(r.measured for r in t.runs)
        seconds = sum(r.seconds for r in t.runs)
        latencies = [x for r in t.runs for x in r.latencies]
        queued = [r.queued for r in t.runs]
        row = {"name": t.name, "rate": measured / seconds if seconds else 0.0,
               "p50": percentile(latencies, 50), "p99": percentile(latencies, 99),
               "non2xx": sum(r.measured_non2xx for r in t.runs) + sum(r.errors for r in t.runs),
               "answered": sum(sum(r.statuses.values()) for r in t.runs), "queued": sum(queued),
               "ignored": sum(r.ignored for r in t.runs)}
        if t.queue is not None:
            row["on_broker"] = sum(t.on_broker)
            row["lost"] = sum(max(0, q - b) for q, b in zip(queued, t.on_broker))
            row["extra"] = sum(max(0, b - q) for q, b in zip(queued, t.on_broker))
        rows.append(row)
    return rows


def ratios(rows: list[dict[str, Any]]) -> list[tuple[str, float, float, float, float]]:
    """(broker, project/(c) req/s, project/(c) p99, project/(a) req/s, project/(b) req/s) per broker."""
    by_name = {r["name"]: r for r in rows}
    bare = next(r for r in rows if r["name"].startswith("(a)"))
    out = []
    for label in ("Redis", "embedded"):
        project, celery = by_name.get(f"project, {label}"), by_name.get(f"(c) + Celery send_task, {label}")
        lpush = by_name.get(f"(b) + LPUSH, {label}")
        if project and celery and lpush and celery["rate"] and celery["p99"] and bare["rate"] and lpush["rate"]:
            out.append((label, project["rate"] / celery["rate"], project["p99"] / celery["p99"],
                        project["rate"] / bare["rate"], project["rate"] / lpush["rate"]))
    return out


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        found = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.M)
        cpu = found.group(1).strip() if found else cpu
    except OSError:
        pass
    versions = []
    for name in PACKAGES:
        try:
            versions.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            pass
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    return (f"{cpu}, {os.cpu_count()} logical CPUs, {platform.system()} {platform.release()}; "
            f"Python {platform.python_version()}; {', '.join(versions)}; load average before the run {load}")


def section(rows: list[dict[str, Any]], described: str, redis_up: bool, rounds: int, warmup: float, seconds: float,
            in_flight: int, pool: int) -> str:
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        HEADING, "",
        f"One run of `make bench` (benchmarks/ingest.py), {now}.",
        f"Machine: {described}.", "",
        f"Load: {in_flight} keep-alive connections from a multi-process generator on the same machine, "
        f"{rounds} rounds per target ({warmup:g} s warm-up + {seconds:g} s measured each), targets "
        f"visited in turn; up to {pool:,} unique, signed real deliveries per load. Every target is served by "
        "gunicorn with the Procfile's web flags. Broker: " + ("a local Redis (one db, flushed before each load) "
        "and " if redis_up else "") + "the embedded redis-server over its unix socket.", "",
        "| target | req/s | p50 ms | p99 ms | non-2xx | 202 queued | 202 ignored | on broker | lost |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        broker = f"{r['on_broker']:,}" if "on_broker" in r else "n/a"
        lost = (f"{r['lost']}" + (f" (+{r['extra']} extra)" if r["extra"] else "")) if "lost" in r else "n/a"
        lines.append(f"| {r['name']} | {r['rate']:,.0f} | {r['p50']:.1f} | {r['p99']:.1f} | {r['non2xx']} "
                     f"| {r['queued']:,} | {r['ignored']:,} | {broker} | {lost} |")
    lines += ["", "| broker | project/(c) req/s | project/(c) p99 | project/(a) req/s | project/(b) req/s | goal "
              f"(≥ {GOAL_RATE}× (c) req/s, ≤ {GOAL_P99}× (c) p99, 0 lost) |", "|---|---:|---:|---:|---:|---|"]
    for label, rate, p99, vs_bare, vs_lpush in ratios(rows):
        lost = sum(r.get("lost", 0) for r in rows if r["name"].endswith(label))
        met = rate >= GOAL_RATE and p99 <= GOAL_P99 and lost == 0
        lines.append(f"| {label} | {rate:.2f} | {p99:.2f} | {vs_bare:.2f} | {vs_lpush:.2f} "
                     f"| {'met' if met else 'NOT met'} |")
    lines += ["", "(a) verifies the HMAC and answers; (b) adds one LPUSH of the raw body; (c) parses the body "
              "and calls Celery `send_task`; the project adds the envelope check, dedupe and the receive "
              "record (one Lua call); it runs with a one-rule set that listens to every event, so every delivery is "
              "enqueued as in the baselines. \"lost\" counts queued 202s whose message was not on the broker "
              "after the load.", ""]
    return "\n".join(lines)


def write_section(text: str, heading: str = HEADING) -> None:
    """Replace `heading` up to the next `## ` heading (or append it), leaving the rest alone.

    Every benchmark writes its own section of RESULTS.md through this."""
    old = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    pattern = re.compile(rf"^{re.escape(heading)}\n.*?(?=^## |\Z)", re.M | re.S)
    if pattern.search(old):
        new = pattern.sub(lambda _: text + "\n", old, count=1)
    else:
        new = old.rstrip("\n") + "\n\n" + text + "\n"
    RESULTS.write_text(new.rstrip("\n") + "\n")
