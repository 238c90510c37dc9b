"""CPU per event: the real worker drains events against the sandbox at zero latency (information).

Where the time goes under real conditions (Prepr 200 ms away, its windows) is benchmarks/realistic.py;
this one says what an event costs the machine: CPU of the worker, the sandbox and Redis per event,
and the economy rule (SPEC §8) checked on every trace and against the sandbox's request log.

Method. The Procfile's worker command; per round: flush the benchmark's Redis db, start the worker,
drain a few warm-up messages, put EVENTS messages on a staging list through the receiver's own
intake (`Intake.accept`) while the worker idles, RENAME it onto the worker's queue (the clock starts)
and stop the clock at the first of two consecutive polls that find the queue and kombu's un-acked
hash empty (acks late: the last task has returned and written its trace). The sandbox is seeded
with ITEMS articles and a rule that changes each item once; events visit the items in turn, so the
first event for an item costs 1 GET + 1 PUT, every later one 1 GET and no PUT. PREPR_RATE_LIMIT is
high enough that the limiter never waits. A breach of the economy rule exits non-zero.

Environment: BENCH_E2E_REDIS_URL (default db 8 of the local Redis, flushed per round),
BENCH_E2E_EVENTS (1,000), BENCH_E2E_ITEMS (200), BENCH_E2E_ROUNDS (2).
`python -m benchmarks.e2e --profile` instead profiles the event task in-process (pyinstrument).
"""
from __future__ import annotations

import datetime
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median
from typing import Any, Callable

import redis

from benchmarks import _report
from prepr_automation import compact
from benchmarks._stack import (TOKEN, USER_ID, Processes, Sandbox, cpu_seconds, procfile_worker, redis_cpu,
                               start_sandbox, terminated_cleanly, worker_args)

HEADING = "## End to end"

REDIS_URL = os.environ.get("BENCH_E2E_REDIS_URL", "redis://127.0.0.1:6379/8")
EVENTS = int(os.environ.get("BENCH_E2E_EVENTS", "1000"))
ITEMS = int(os.environ.get("BENCH_E2E_ITEMS", "200"))
ROUNDS = int(os.environ.get("BENCH_E2E_ROUNDS", "2"))
WARM = 8                      # warm-up messages per round, on items of their own
QUEUE, UNACKED = "celery", "unacked"  # the worker's queue and kombu's un-acked hash
STAGING = "bench:e2e:staging"
POLL = 0.01
DRAIN_TIMEOUT = 90.0
RATE_LIMIT = "10000/second"
EDITOR = {"id": "b3e2e000-0000-4000-8000-0000000ed170"}
FINAL = ("done", "no change", "no rule matched", "dead-lettered", "skipped", "ignored", "dry run", "refused",
         "nothing matched")

VOCABULARY = {
    "football": ["football", "soccer", "premier league"],
    "tennis": ["tennis", "wimbledon", "grand slam"],
    "cycling": ["cycling", "peloton", "tour de france"],
    "athletics": ["marathon", "sprint", "athletics"],
}
RULES = """version: 1
rules:
  - id: tag-sport-stories
    description: Sport stories get the sport tag and tags from the sport vocabulary
    on: [content_item.created, content_item.changed]
    when:
      model: {in: [Article, News]}
      not:
        tags: {in: [no-automation]}
    do:
      - add_tags: [sport]
      - auto_tag:
          vocabulary: %s
          fields: [title, intro]
          match: word
          max_tags: 3
""" % json.dumps(VOCABULARY)


def item_id(n: int) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"bench-e2e/item/{n}"))


def seed(items: int) -> dict[str, Any]:
    """`items` sport stories without tags (each changed once by the rule), WARM more for the warm-up."""
    sports = [("football", "A late soccer goal settles the derby", "Premier League leaders win again"),
              ("tennis", "Wimbledon seeds advance", "A tennis upset on the grass"),
              ("cycling", "The peloton splits in the wind", "Cycling's sprinters miss the break"),
              ("athletics", "A marathon record falls", "Athletics has a new star in the sprint")]
    pubs = []
    for n in range(items + WARM):
        _, title, intro = sports[n % len(sports)]
        pubs.append({"id": item_id(n), "model": {"body": "Article" if n % 2 else "News"}, "locales": ["en-GB"],
                     "status": "published", "channels": [{"slug": "web"}],
                     "items": {"en-GB": {"title": {"body": f"{title} (story {n})"}, "intro": {"body": intro},
                                         "content": {"body": f"<p>Report number {n}.</p>"},
                                         "tags": {"items": []}}}})
    return {"publications": pubs}


def item_of(n: int) -> int:
    """Message n of a phase: the warm-up ones go to items of their own, the measured ones visit the
    ITEMS items in turn (events for one item are ITEMS apart: never two at once)."""
    return ITEMS + n if n < WARM else (n - WARM) % ITEMS


def envelope(n: int) -> dict[str, Any]:
    return {"id": str(uuid.uuid4()), "event": "content_item.changed", "created_on": int(time.time()),
            "performed_by": EDITOR, "payload": {"id": item_id(n)}}


# -- one phase -------------------------------------------------------------------------------

@dataclass
class Phase:
    round_no: int
    messages: int
    seconds: float
    event_ids: list[str] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=dict)   # CPU seconds during the drain, per process

    def cpu_ms(self, who: str) -> float:
        return 1000 * self.cpu.get(who, 0.0) / self.messages

    @property
    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds else 0.0


def drained(client: redis.Redis) -> bool:
    with client.pipeline(transaction=True) as pipe:
        queued, unacked = pipe.llen(QUEUE).hlen(UNACKED).execute()
    return queued == 0 and unacked == 0


def wait_drained(client: redis.Redis, worker: subprocess.Popen, timeout: float) -> float:
    """perf_counter() of the first of two consecutive empty polls (a message in the hands of the
    worker's consumer between its BRPOP and its un-acked entry makes one poll look empty)."""
    deadline = time.perf_counter() + timeout
    first_empty: float | None = None
    while True:
        now = time.perf_counter()
        if drained(client):
            if first_empty is not None:
                return first_empty
            first_empty = now
        else:
            first_empty = None
        if now > deadline:
            raise TimeoutError(f"the queue did not drain within {timeout:g} s")
        if worker.poll() is not None:
            raise RuntimeError(f"the worker exited with {worker.returncode}; "
                               f"see {worker.log}")  # type: ignore[attr-defined]
        time.sleep(POLL)


def run_phase(round_no: int, client: redis.Redis, procs: Processes, env: dict[str, str],
              stage: Callable[[int, int], list[str]], sandbox: subprocess.Popen,
              before_go: Callable[[], None] = lambda: None) -> Phase:
    """Start a worker, warm it up, stage EVENTS messages, release them at once, time the drain."""
    client.flushdb()
    worker = procs.start(f"worker-{round_no}", worker_args("tasks", f"e2e-{round_no}"), env)
    try:
        stage(0, WARM)  # the warm-up messages; the first drain also waits for the worker to be up
        client.rename(STAGING, QUEUE)
        wait_drained(client, worker, 60)
        before_go()
        ids = stage(WARM, WARM + EVENTS)
        assert client.llen(STAGING) == EVENTS, "not every message was staged"
        cpu_before = (cpu_seconds(worker.pid), cpu_seconds(sandbox.pid), redis_cpu(client))
        start = time.perf_counter()
        client.rename(STAGING, QUEUE)
        end = wait_drained(client, worker, DRAIN_TIMEOUT)
        cpu_after = (cpu_seconds(worker.pid), cpu_seconds(sandbox.pid), redis_cpu(client))
    finally:
        procs.stop(worker)
    cpu = {who: after - before for who, before, after in zip(("worker", "sandbox", "redis"), cpu_before, cpu_after)}
    phase = Phase(round_no, EVENTS, end - start, ids, cpu)
    print(f"  round {round_no}: {EVENTS:,} in {phase.seconds:6.2f} s = {phase.rate:8.1f} /s;"
          f"  CPU ms per message: worker {phase.cpu_ms('worker'):.2f}, sandbox {phase.cpu_ms('sandbox'):.2f},"
          f" redis {phase.cpu_ms('redis'):.2f}", flush=True)
    return phase


def project_stager(client: redis.Redis) -> Callable[[int, int], list[str]]:
    """Deliveries queued by the receiver's own intake, onto the staging list instead of the queue."""
    import webhooks.intake as intake_module

    intake = intake_module.Intake(client, 3600, 3600, queue=STAGING)  # the list key only; the message is unchanged

    def stage(first: int, last: int) -> list[str]:
        client.delete(STAGING)
        ids = []
        for n in range(first, last):
            event = envelope(item_of(n))
            assert intake.accept(event, "queued") == "queued"
            ids.append(event["id"])
        return ids
    return stage


# -- the economy rule ------------------------------------------------------------------------

@dataclass
class Economy:
    events: int = 0
    gets: int = 0
    puts: int = 0
    wire: Counter = field(default_factory=Counter)
    outcomes: Counter = field(default_factory=Counter)
    elapsed_ms: list[float] = field(default_factory=list)
    breaches: list[str] = field(default_factory=list)


def check_economy(client: redis.Redis, sandbox: Sandbox, phase: Phase, economy: Economy) -> None:
    """Every event's trace against SPEC §8, and the traces against the sandbox's request log."""
    from prepr_automation import store

    with client.pipeline(transaction=False) as pipe:
        for event_id in phase.event_ids:
            pipe.hget(store.trace_key(event_id), "run")
        runs = pipe.execute()
    log = sandbox.requests_log()
    breaches = economy.breaches
    seen_items: Counter = Counter()
    puts_per_path: Counter = Counter()
    for n, (event_id, raw) in enumerate(zip(phase.event_ids, runs)):
        run = compact.loads(raw) if raw else {}
        outcome = run.get("outcome", "")
        economy.outcomes[outcome.split(":")[0] or "no trace"] += 1
        if not outcome.startswith(FINAL):
            breaches.append(f"event {event_id}: no final outcome ({outcome or 'no trace'})")
            continue
        economy.elapsed_ms.append(float(run.get("elapsed_ms") or 0))
        calls = Counter(c["method"] for c in run.get("calls", []))
        economy.events += 1
        economy.gets += calls["GET"]
        economy.puts += calls["PUT"]
        if calls["GET"] > 1 or calls["PUT"] > 1 or set(calls) - {"GET", "PUT"}:
            breaches.append(f"event {event_id}: {dict(calls)} (at most 1 GET + 1 PUT)")
        if outcome.startswith("no change") and calls["PUT"]:
            breaches.append(f"event {event_id}: a PUT although nothing changed")
        item = item_id(n % ITEMS)
        expected = "done: 1 call(s) sent" if seen_items[item] == 0 else "no change"
        seen_items[item] += 1
        if outcome != expected:
            breaches.append(f"event {event_id} ({seen_items[item]}. for its item): {outcome!r}, expected {expected!r}")
    for entry in log:
        economy.wire[entry["method"]] += 1
        if entry["method"] == "PUT":
            puts_per_path[entry["path"]] += 1
        if not 200 <= int(entry.get("status", 0)) < 300:
            breaches.append(f"sandbox answered {entry['status']} to {entry['method']} {entry['path']}")
    traced = +Counter(c["method"] for r in runs if r for c in compact.loads(r).get("calls", []))
    wire = +Counter(e["method"] for e in log)
    if wire != traced:
        breaches.append(f"the sandbox saw {dict(wire)}, the traces record {dict(traced)}")
    twice = [path for path, count in puts_per_path.items() if count > 1]
    if twice:
        breaches.append(f"{len(twice)} item(s) written more than once, e.g. {twice[0]}")


# -- profile ---------------------------------------------------------------------------------

def profile(events: int = 400) -> None:
    """The event task in this process, ITEMS first events (GET + PUT) then repeats (GET only):
    once plainly timed, counting Redis round trips and HTTP time per event, once under pyinstrument."""
    from pyinstrument import Profiler
    from redis.connection import Connection

    work = Path(tempfile.mkdtemp(prefix="bench-e2e-profile-"))
    procs = Processes(work)
    client = redis.Redis.from_url(REDIS_URL)
    round_trips = Counter()
    original = Connection.send_packed_command

    def counting(self: Connection, command: Any, check_health: bool = True) -> None:
        round_trips["all"] += 1
        return original(self, command, check_health)

    with terminated_cleanly():
        try:
            sandbox = start_sandbox(procs, work / "sandbox")
            (work / "rules.yaml").write_text(RULES)
            os.environ.update(project_env(sandbox, work))
            from prepr_automation import store
            from tasks.events import process_event

            for profiled in (False, True):
                sandbox.admin("POST", "reset", {"seed": seed(ITEMS)})
                client.flushdb()
                process_event(envelope(ITEMS))  # build the runtime, connect: outside the measure
                envelopes = [envelope(n % ITEMS) for n in range(events)]
                profiler = Profiler(interval=0.0005) if profiled else None
                Connection.send_packed_command = counting  # type: ignore[method-assign]
                round_trips.clear()
                start = time.perf_counter()
                if profiler:
                    profiler.start()
                for env in envelopes:
                    process_event(env)
                if profiler:
                    profiler.stop()
                seconds = time.perf_counter() - start
                Connection.send_packed_command = original  # type: ignore[method-assign]
                if profiler:
                    print(profiler.output_text(unicode=True, color=False, show_all=False))
                    continue
                runs = [compact.loads(client.hget(store.trace_key(e["id"]), "run")) for e in envelopes]
                http_ms = sum(c["ms"] for r in runs for c in r["calls"]) / events
                per_call = {m: median([c["ms"] for r in runs for c in r["calls"] if c["method"] == m] or [0])
                            for m in ("GET", "PUT")}
                task_ms = sum(r["elapsed_ms"] for r in runs) / events
                print(f"e2e profile: {events} events ({ITEMS} with a PUT) in one process: {events / seconds:.0f} /s, "
                      f"{1000 * seconds / events:.2f} ms per event; task body {task_ms:.2f} ms, of which HTTP "
                      f"{http_ms:.2f} ms (median GET {per_call['GET']:.2f} ms, PUT {per_call['PUT']:.2f} ms); "
                      f"Redis round trips per event {round_trips['all'] / events:.1f}", flush=True)
        finally:
            Connection.send_packed_command = original  # type: ignore[method-assign]
            procs.close()
            client.flushdb()
            shutil.rmtree(work, ignore_errors=True)


# -- report ----------------------------------------------------------------------------------

def project_env(sandbox: Sandbox, work: Path) -> dict[str, str]:
    return {"CELERY_BROKER_URL": REDIS_URL, "PREPR_API_URL": sandbox.url, "PREPR_TRACKING_URL": sandbox.url,
            "PREPR_ACCESS_TOKEN": TOKEN, "PREPR_AUTOMATION_USER_ID": USER_ID, "PREPR_RATE_LIMIT": RATE_LIMIT,
            "RULES_PATH": str(work / "rules.yaml"), "DATA_DIR": str(work / "var")}


def section(phases: list[Phase], economy: Economy, described: str, worker: str) -> str:
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    n = economy.events or 1
    lines = [
        HEADING, "",
        f"One run of `python -m benchmarks.e2e` (part of `make bench`), {now}. Information only: how much CPU an "
        "event costs; throughput under real conditions is the Realistic section.",
        f"Machine: {described}.", "",
        f"Worker: the Procfile's line (`{worker.split(':', 1)[1].strip()}`), one local Redis db as broker; "
        f"{ROUNDS} rounds of {EVENTS:,} events staged through the receiver's intake and released in one RENAME, "
        f"against the sandbox at zero latency ({ITEMS} articles, a rule that changes each item once: the first "
        "event for an item is 1 GET + 1 PUT, the later ones 1 GET). PREPR_RATE_LIMIT="
        f"{RATE_LIMIT} (never waits).", "",
        "| round | events/s | worker CPU ms/event | sandbox CPU ms/event | Redis CPU ms/event | total |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for p in phases:
        total = sum(p.cpu_ms(who) for who in ("worker", "sandbox", "redis"))
        lines.append(f"| {p.round_no} | {p.rate:,.0f} | {p.cpu_ms('worker'):.2f} | {p.cpu_ms('sandbox'):.2f} "
                     f"| {p.cpu_ms('redis'):.2f} | {total:.2f} |")
    lines += ["", "API calls per event (each trace checked against the sandbox's request log):", "",
              "| events | GET | PUT | GET/event | PUT/event | events that changed their item | PUT on the wire |",
              "|---:|---:|---:|---:|---:|---:|---:|",
              f"| {economy.events:,} | {economy.gets:,} | {economy.puts:,} | {economy.gets / n:.2f} "
              f"| {economy.puts / n:.2f} | {economy.outcomes.get('done', 0):,} | {economy.wire.get('PUT', 0):,} |", "",
              "Economy rule (≤ 1 GET + ≤ 1 PUT per event, 0 PUT when nothing changes): "
              + ("kept by every event." if not economy.breaches else
                 f"BROKEN ({len(economy.breaches)} breaches, e.g. {economy.breaches[0]})."),
              f"Task body per event (trace `elapsed_ms`): median "
              f"{median(economy.elapsed_ms) if economy.elapsed_ms else 0:.1f} ms. "
              "`python -m benchmarks.e2e --profile` breaks the task's time down (in-process, pyinstrument).", ""]
    return "\n".join(lines)


# -- main ------------------------------------------------------------------------------------

def measure(client: redis.Redis, procs: Processes, work: Path, phases: list[Phase], economy: Economy) -> None:
    """The sandbox, then ROUNDS phases, appending to `phases` and `economy`."""
    sandbox = start_sandbox(procs, work / "sandbox")
    (work / "rules.yaml").write_text(RULES)
    clean = {k: v for k, v in os.environ.items() if k not in ("SENTRY_DSN", "REDIS_URL")}
    env = {**clean, **project_env(sandbox, work)}
    stage = project_stager(client)
    print(f"e2e: {ROUNDS} rounds, {EVENTS:,} messages each, broker {REDIS_URL}; logs in {work}", flush=True)
    for round_no in range(1, ROUNDS + 1):
        sandbox.admin("POST", "reset", {"seed": seed(ITEMS)})  # every item has its change to make
        phase = run_phase(round_no, client, procs, env, stage, sandbox.proc,
                          before_go=lambda: sandbox.admin("DELETE", "requests"))
        phases.append(phase)
        check_economy(client, sandbox, phase, economy)


def main(write: Callable[[str], None] | None = None) -> dict[str, Any]:
    if EVENTS % ITEMS or EVENTS < ITEMS:
        raise SystemExit(f"e2e: BENCH_E2E_EVENTS ({EVENTS}) must be a multiple of BENCH_E2E_ITEMS ({ITEMS})")
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        print(f"e2e: no Redis at {REDIS_URL} ({exc}); skipped")
        return {}
    described = _report.machine()  # before the load, so its load average is the machine's own
    work = Path(tempfile.mkdtemp(prefix="bench-e2e-"))
    procs = Processes(work)
    phases: list[Phase] = []
    economy = Economy()
    ok = False
    with terminated_cleanly():
        try:
            measure(client, procs, work, phases, economy)
            ok = True
        finally:
            procs.close()
            try:
                client.flushdb()
            except redis.RedisError:
                pass
            if ok:
                shutil.rmtree(work, ignore_errors=True)
            else:
                print(f"e2e: failed; worker and sandbox logs kept in {work}", file=sys.stderr)
    text = section(phases, economy, described, procfile_worker())
    print(text)
    (write or (lambda t: _report.write_section(t, HEADING)))(text)
    if economy.breaches:
        print(f"e2e: {len(economy.breaches)} event(s) broke the economy rule or ended otherwise than expected:\n  "
              + "\n  ".join(economy.breaches[:20]), file=sys.stderr)
        raise SystemExit(1)
    return {"phases": phases, "economy": economy}


if __name__ == "__main__":
    if "--profile" in sys.argv[1:]:
        profile()
    else:
        main()
