"""End-to-end benchmark: events per second through the real worker against the sandbox, side by
side with a Celery no-op task's drain rate measured in the same run, and API calls per event.

Method. Both sides run the Procfile's worker command (prefork, its concurrency, acks late,
prefetch 1, same broker, same queues, same log level); they differ only in the task. Phases
alternate, baseline / project / baseline / project ..., so the noise of this small shared machine
hits both alike; what travels is the ratio of each pair, and the goal is judged on the median
pair: the machine's speed swings by half within seconds (a fixed CPU loop took 0.15 to 0.22 s
in one minute), so any single pair may have one side in a slow spell. Per phase:

1. flush the benchmark's Redis db, start the worker, drain a few warm-up messages (so imports,
   connections and the rule set are loaded, as in a worker that has been up for a while);
2. put N messages on a staging list while the worker idles (not timed). The project's go
   through `Intake.accept` exactly as the web receiver queues a delivery (dedupe key, receive
   record, Celery message in one Lua call); the baseline's through Celery's `send_task`, with
   the same envelope as argument;
3. RENAME the staging list onto the worker's queue: one atomic step, the clock starts;
4. the clock stops at the first of two consecutive polls (every 10 ms) that find the queue AND
   kombu's un-acked hash empty. With acks late a message leaves the un-acked hash only after
   its task returned, and the project's task writes the event's trace before returning, so
   the project's drain ends when every trace has its outcome (checked afterwards).

The project's phase runs against the sandbox at zero latency, seeded with ITEMS articles and a
rule (condition on the model, add_tags + auto_tag over title and intro) that changes each item
once. Events visit the items in turn, EVENTS / ITEMS times: the first event for an item costs
1 GET + 1 PUT, every later one 1 GET and no PUT (nothing left to change). PREPR_RATE_LIMIT is
set high enough that the limiter never waits.

The economy rule (SPEC §8: at most one GET and one PUT per event, no PUT when nothing changes)
is checked on every event's trace and against the sandbox's request log; a breach is a
correctness bug, so the benchmark exits non-zero after writing what it saw.

Environment: BENCH_E2E_REDIS_URL (default db 8 of the local Redis, flushed per phase),
BENCH_E2E_EVENTS (2,000), BENCH_E2E_ITEMS (200), BENCH_E2E_ROUNDS (5).
`python -m benchmarks.e2e --profile` instead profiles the event task in-process (pyinstrument).
"""
from __future__ import annotations

import datetime
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median
from typing import Any, Callable, Iterator

import redis
import requests

from benchmarks import _report

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
HEADING = "## End to end"

REDIS_URL = os.environ.get("BENCH_E2E_REDIS_URL", "redis://127.0.0.1:6379/8")
EVENTS = int(os.environ.get("BENCH_E2E_EVENTS", "2000"))
ITEMS = int(os.environ.get("BENCH_E2E_ITEMS", "200"))
ROUNDS = int(os.environ.get("BENCH_E2E_ROUNDS", "5"))
GOAL = 0.5
WARM = 8                      # warm-up messages per phase (on items of their own in the project's phase)
QUEUE, UNACKED = "celery", "unacked"  # the worker's queue and kombu's un-acked hash
STAGING = "bench:e2e:staging"
POLL = 0.01
DRAIN_TIMEOUT = 90.0
RATE_LIMIT = "10000"
TOKEN = "bench-e2e-token"
USER_ID = "b3e2e000-0000-4000-8000-00000000a07a"   # the automation's user in the sandbox
EDITOR = {"id": "b3e2e000-0000-4000-8000-0000000ed170"}
FINAL = ("done", "no change", "no rule matched", "dead-lettered", "skipped", "ignored", "dry run", "refused",
         "nothing matched")
NOOP_APP = "benchmarks._e2e_noop"

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


# -- processes -------------------------------------------------------------------------------

class Processes:
    """Every subprocess this benchmark starts, each in its own session; all stopped on exit."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.procs: list[subprocess.Popen] = []

    def start(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen:
        log = self.logs / f"{name}.log"
        with open(log, "ab") as out:
            proc = subprocess.Popen(args, cwd=str(ROOT), env=env, stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        proc.log = log  # type: ignore[attr-defined]
        self.procs.append(proc)
        return proc

    @staticmethod
    def stop(proc: subprocess.Popen, timeout: float = 20) -> None:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout)
            except ProcessLookupError:
                return
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)

    def close(self) -> None:
        """Stop them all, even if a signal or an error interrupts one stop; then re-raise it."""
        interrupted: BaseException | None = None
        for proc in reversed(self.procs):
            for _ in range(2):
                try:
                    self.stop(proc)
                    break
                except BaseException as exc:  # keep stopping the others (a second try, then SIGKILL)
                    interrupted = interrupted or exc
                    if proc.poll() is None:
                        try:
                            os.killpg(proc.pid, signal.SIGKILL)
                        except ProcessLookupError:
                            pass
        if isinstance(interrupted, (SystemExit, KeyboardInterrupt)):
            raise interrupted
        if interrupted is not None:
            print(f"e2e: could not stop a process cleanly: {interrupted!r}", file=sys.stderr)


@contextmanager
def terminated_cleanly() -> Iterator[None]:
    """SIGTERM/SIGHUP end the run through `finally`, so no worker or sandbox is left behind; the
    `finally` that stops them must be inside this block (a repeated signal is then ignored)."""
    fired: list[int] = []

    def _exit(signum: int, _frame: object) -> None:
        if not fired:
            fired.append(signum)
            raise SystemExit(128 + signum)

    previous = {sig: signal.signal(sig, _exit) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def worker_args(app: str, name: str) -> list[str]:
    """The Procfile's worker command with `app` for `-A`, $VARs expanded, a node name of its own."""
    line = next(l for l in (ROOT / "Procfile").read_text().splitlines() if l.startswith("worker:"))
    line = re.sub(r"\$\{(\w+):-([^}]*)\}", lambda m: os.environ.get(m.group(1), m.group(2)), line[7:])
    args = shlex.split(line)
    args[args.index("-A") + 1] = app
    args[0] = str(BIN / args[0])
    return args + ["-n", f"{name}@%h"]


def concurrency(args: list[str]) -> int:
    flag = "--concurrency" if "--concurrency" in args else "-c"
    return int(args[args.index(flag) + 1]) if flag in args else os.cpu_count() or 1


def cpu_seconds(pgid: int) -> float:
    """User + system CPU of every live process in a process group (Linux /proc; 0 elsewhere)."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid:      # fields after the command: state ppid pgrp ... utime(11) stime(12)
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def redis_cpu(client: redis.Redis) -> float:
    info = client.info("cpu")
    return float(info.get("used_cpu_user", 0)) + float(info.get("used_cpu_sys", 0))


# -- the sandbox -----------------------------------------------------------------------------

@dataclass
class Sandbox:
    url: str
    proc: subprocess.Popen

    def admin(self, verb: str, path: str, body: object = None) -> Any:
        response = requests.request(verb, f"{self.url}/_sandbox/{path}", json=body,
                                    headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60)
        response.raise_for_status()
        return response.json()

    def requests_log(self) -> list[dict[str, Any]]:
        return self.admin("GET", "requests")


def start_sandbox(procs: Processes, data_dir: Path) -> Sandbox:
    port = free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PREPR_ACCESS_TOKEN": TOKEN}
    proc = procs.start("sandbox", [sys.executable, "-m", "sandbox", "--port", str(port), "--data-dir",
                                   str(data_dir), "--user-id", USER_ID], env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the sandbox exited with {proc.returncode}; see {proc.log}")  # type: ignore[attr-defined]
        try:
            requests.get(f"{url}/health", timeout=1)
            return Sandbox(url, proc)
        except requests.RequestException:
            time.sleep(0.1)
    raise TimeoutError("the sandbox did not answer within 30 s")


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
    side: str                 # "baseline" | "project"
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


def run_phase(side: str, round_no: int, client: redis.Redis, procs: Processes, env: dict[str, str],
              stage: Callable[[int, int], list[str]], sandbox: subprocess.Popen,
              before_go: Callable[[], None] = lambda: None) -> Phase:
    """Start a worker, warm it up, stage EVENTS messages, release them at once, time the drain."""
    client.flushdb()
    app = "tasks" if side == "project" else NOOP_APP
    worker = procs.start(f"worker-{side}-{round_no}", worker_args(app, f"e2e-{side}-{round_no}"), env)
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
    phase = Phase(side, round_no, EVENTS, end - start, ids, cpu)
    print(f"  {side:<8} round {round_no}: {EVENTS:,} in {phase.seconds:6.2f} s = {phase.rate:8.1f} /s;"
          f"  CPU ms per message: worker {phase.cpu_ms('worker'):.2f}, sandbox {phase.cpu_ms('sandbox'):.2f},"
          f" redis {phase.cpu_ms('redis'):.2f}", flush=True)
    return phase


def noop_stager(client: redis.Redis) -> Callable[[int, int], list[str]]:
    """Messages for the no-op task, sent through Celery as any producer sends them."""
    from celery import Celery

    from benchmarks._e2e_noop import NAME

    producer = Celery("bench_e2e_producer", broker=REDIS_URL, set_as_current=False)
    producer.conf.update(task_serializer="json", accept_content=["json"], broker_connection_retry_on_startup=True)

    def stage(first: int, last: int) -> list[str]:
        client.delete(STAGING)
        with producer.producer_or_acquire() as publisher:
            for n in range(first, last):
                producer.send_task(NAME, args=[envelope(item_of(n))], queue=STAGING, producer=publisher)
        return []
    return stage


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
        run = json.loads(raw) if raw else {}
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
    traced = +Counter(c["method"] for r in runs if r for c in json.loads(r).get("calls", []))
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
                runs = [json.loads(client.hget(store.trace_key(e["id"]), "run")) for e in envelopes]
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


def section(phases: list[Phase], economy: Economy, described: str, workers: int) -> str:
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    base = [p for p in phases if p.side == "baseline"]
    proj = [p for p in phases if p.side == "project"]
    pairs = [(b, p) for b in base for p in proj if b.round_no == p.round_no]
    ratios = [p.rate / b.rate for b, p in pairs if b.rate]
    overall = (sum(p.messages for p in proj) / sum(p.seconds for p in proj)) / \
              (sum(b.messages for b in base) / sum(b.seconds for b in base))
    n = economy.events or 1
    met = median(ratios) >= GOAL if ratios else False
    lines = [
        HEADING, "",
        f"One run of `python -m benchmarks.e2e` (part of `make bench`), {now}.",
        f"Machine: {described}.", "",
        f"Both sides run the Procfile's worker command (prefork, concurrency {workers}, acks late, prefetch 1, "
        f"one local Redis db as broker); phases alternate baseline / project, {ROUNDS} rounds. Each phase: "
        f"a fresh worker drains {WARM} warm-up messages, then {EVENTS:,} messages staged while it idles are "
        "moved onto its queue in one atomic RENAME; the clock runs from there until the queue and kombu's "
        "un-acked hash are empty (acks late: the last task has returned, and the project's has written its trace).", "",
        f"Project: `tasks.process_event` against the sandbox (zero latency, {ITEMS} articles), queued by the "
        "receiver's own intake; one rule (condition on the model, `add_tags` + `auto_tag` over title and intro) that "
        f"changes each item once; the events visit the items in turn, {EVENTS // ITEMS} per item, so the first "
        f"for an item is 1 GET + 1 PUT and the later ones 1 GET + no PUT. PREPR_RATE_LIMIT={RATE_LIMIT} (never "
        "waits). Baseline: a Celery no-op task with the same envelope as argument, sent with `send_task`.", "",
        "| round | no-op drain /s | project events/s | project / no-op |",
        "|---:|---:|---:|---:|",
    ]
    for (b, p), ratio in zip(pairs, ratios):
        lines.append(f"| {b.round_no} | {b.rate:,.0f} | {p.rate:,.0f} | {ratio:.2f} |")
    lines.append(f"| all | {sum(b.messages for b in base) / sum(b.seconds for b in base):,.0f} "
                 f"| {sum(p.messages for p in proj) / sum(p.seconds for p in proj):,.0f} | {overall:.2f} |")
    lines += ["", f"Goal: project ≥ {GOAL}× the no-op drain rate (median of the rounds' ratios) — "
              f"{'met' if met else 'NOT met'}: median {median(ratios) if ratios else 0:.2f}, lowest "
              f"{min(ratios, default=0):.2f}, highest {max(ratios, default=0):.2f}.", "",
              "CPU per message during the drains (median of the rounds; the worker's whole process group, the "
              "sandbox process, and the Redis server, which other users of the machine may share):", "",
              "| side | worker ms | sandbox ms | Redis ms | total ms |", "|---|---:|---:|---:|---:|"]
    total = 0.0
    for side, group in (("no-op", base), ("project", proj)):
        cpu = {who: median(p.cpu_ms(who) for p in group) for who in ("worker", "sandbox", "redis")}
        total = sum(cpu.values())
        lines.append(f"| {side} | {cpu['worker']:.2f} | {cpu['sandbox']:.2f} | {cpu['redis']:.2f} | {total:.2f} |")
    cpus = os.cpu_count() or 1
    base_rate = sum(b.messages for b in base) / sum(b.seconds for b in base)
    if total:
        lines += ["", f"At {total:.2f} ms of CPU per event (all processes), {cpus} CPUs allow at most "
                  f"{cpus * 1000 / total:,.0f} events/s = {cpus * 1000 / total / base_rate:.2f}× the no-op drain rate, "
                  f"however the waits overlap; {GOAL}× needs ≤ {cpus * 1000 / (GOAL * base_rate):.2f} ms per event."]
    lines += ["", "API calls per event (every project phase; each trace checked against the sandbox's request log):", "",
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
    """The sandbox, then ROUNDS x (baseline phase, project phase), appending to `phases` and `economy`."""
    sandbox = start_sandbox(procs, work / "sandbox")
    (work / "rules.yaml").write_text(RULES)
    clean = {k: v for k, v in os.environ.items() if k not in ("SENTRY_DSN", "REDIS_URL")}
    env = {**clean, **project_env(sandbox, work)}
    stages = {"baseline": noop_stager(client), "project": project_stager(client)}
    print(f"e2e: {ROUNDS} rounds, {EVENTS:,} messages per phase, broker {REDIS_URL}; logs in {work}", flush=True)
    for round_no in range(1, ROUNDS + 1):
        for side in ("baseline", "project"):
            if side == "project":
                sandbox.admin("POST", "reset", {"seed": seed(ITEMS)})  # every item has its change to make
            phase = run_phase(side, round_no, client, procs, env, stages[side], sandbox.proc,
                              before_go=lambda: sandbox.admin("DELETE", "requests"))
            phases.append(phase)
            if side == "project":
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
    text = section(phases, economy, described, concurrency(worker_args("tasks", "x")))
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
