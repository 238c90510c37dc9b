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
(default db 9 of the local Redis, flushed per phase), BENCH_REALISTIC_BURSTS ("300,600"),
BENCH_REALISTIC_REPLAY (600). `python -m benchmarks.realistic --pools`
runs the 300-event burst once per worker pool (prefork, threads, gevent) side by side.
"""
from __future__ import annotations

import datetime
import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
import requests
from limits import parse_many

from benchmarks import _corpus, _report, _stack

HEADING = "## Realistic"
REDIS_URL = os.environ.get("BENCH_REALISTIC_REDIS_URL", "redis://127.0.0.1:6379/9")
LATENCY_MS, PREPR_WINDOWS = 200, "35/second;800/minute"
BURSTS = tuple(int(n) for n in os.environ.get("BENCH_REALISTIC_BURSTS", "300,600").split(","))
REPLAY, COALESCE = int(os.environ.get("BENCH_REALISTIC_REPLAY", "600")), 2.0
GOALS = {"burst": 0.9, "get": 0.65, "lag": 10.0}
EDITOR = "b3e2e000-0000-4000-8000-0000000ed170"
STAGING = "bench:realistic:staging"
POOLS = {  # --pools: the Procfile's line with another pool; concurrency sized for waiting, not cores
    "prefork -c 4": "--pool prefork --concurrency 4", "prefork -c 16": "--pool prefork --concurrency 16",
    "threads -c 32": "--pool threads --concurrency 32", "gevent -c 64": "--pool gevent --concurrency 64"}
RULES = """version: 1
rules:
  - id: tag-sport
    on: [content_item.changed]
    when: {model: {in: [Article]}}
    do: [{add_tags: [sport]}]
  - id: tag-music
    on: [content_item.created, content_item.changed, content_item.published]
    when: {model: {in: [TrackPlay, Track, Publication, Artist]}}
    do:
      - add_tags: [music]
      - auto_tag: {vocabulary: {acoustic: [acoustic]}, fields: [title], match: word}
"""


def fastest_schedule(calls: int, windows: str = PREPR_WINDOWS, latency: float = LATENCY_MS / 1000) -> float:
    """Seconds from the first call to the answer of the last when each goes out as early as every
    moving window allows: call i waits for call i - amount to leave each window."""
    items, sent = parse_many(windows), []
    for i in range(calls):
        sent.append(max([0.0] + [sent[i - w.amount] + w.get_expiry() for w in items if i >= w.amount]))
    return sent[-1] + latency


@dataclass
class Result:
    name: str
    deliveries: int
    seconds: float = 0.0
    gets: int = 0
    puts: int = 0
    refused: int = 0
    wrong: list[str] = field(default_factory=list)
    fastest: float = 0.0
    min_puts: int = 0
    lag: float = 0.0
    untraced: int = 0


class Bench:
    """One sandbox in remote mode, one Redis db, a worker per phase."""

    def __init__(self, work: Path, worker_line: str | None = None) -> None:
        self.work, self.worker_line = work, worker_line
        self.procs = _stack.Processes(work)
        self.client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
        self.sandbox = _stack.start_sandbox(self.procs, work / "sandbox", "--latency-ms", str(LATENCY_MS),
                                            "--rate-limit", PREPR_WINDOWS)
        (work / "rules.yaml").write_text(RULES)
        clean = {k: v for k, v in os.environ.items()
                 if k not in ("SENTRY_DSN", "REDIS_URL", "PREPR_RATE_LIMIT", "COALESCE_SECONDS")}
        self.env = {**clean, "CELERY_BROKER_URL": REDIS_URL, "PREPR_API_URL": self.sandbox.url,
                    "PREPR_TRACKING_URL": self.sandbox.url, "PREPR_ACCESS_TOKEN": _stack.TOKEN,
                    "PREPR_AUTOMATION_USER_ID": _stack.USER_ID, "RULES_PATH": str(work / "rules.yaml"),
                    "DATA_DIR": str(work / "var")}
        import webhooks.intake as intake_module
        self.intake_module = intake_module
        self.intake = intake_module.Intake(self.client, 3600, 3600)

    def api(self, verb: str, path: str, body: object = None, editor: bool = False) -> Any:
        headers = {"Authorization": f"Bearer {_stack.TOKEN}", **({"X-Sandbox-User": EDITOR} if editor else {})}
        for _ in range(5):
            answer = requests.request(verb, f"{self.sandbox.url}{path}", json=body, headers=headers, timeout=30)
            if answer.status_code != 429:
                answer.raise_for_status()
                return answer.json()
            time.sleep(float(answer.headers.get("Retry-After", 1)))
        raise RuntimeError(f"{verb} {path}: still 429")

    def start_worker(self, name: str, seed: list[dict[str, Any]]) -> Any:
        """Seed, start the worker, warm it up on an item of its own, then start Prepr's windows afresh."""
        self.client.flushdb()
        warm = article(f"warm-{name}")
        models = [{"id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"bench-realistic/model/{m}")), "label": "Model",
                   "body": m} for m in ("Article", "Track")]
        self.sandbox.admin("POST", "reset", {"seed": {"models": models, "publications": [*seed, warm]}})
        worker = self.procs.start(f"worker-{name}", _stack.worker_args("tasks", f"bench-{name}", self.worker_line),
                                  self.env)
        event = envelope("content_item.changed", warm["id"])
        self.intake.accept(event, enqueue=True)
        self.wait_traced([event["id"]], 60, worker)
        self.sandbox.admin("PUT", "remote", {"latency_ms": LATENCY_MS, "rate_limit": PREPR_WINDOWS})
        self.sandbox.admin("DELETE", "requests")
        return worker

    def wait_traced(self, ids: list[str], timeout: float, worker: Any) -> int:
        """Wait until every event's trace has an outcome; return how many have none by `timeout`."""
        from prepr_automation import store

        deadline = time.monotonic() + timeout
        while True:
            with self.client.pipeline(transaction=False) as pipe:
                for event_id in ids:
                    pipe.hget(store.trace_key(event_id), "run")
                missing = sum(1 for raw in pipe.execute() if not raw or not json.loads(raw).get("outcome"))
            if not missing or time.monotonic() > deadline:
                return missing
            if worker.poll() is not None:
                raise RuntimeError(f"the worker exited with {worker.returncode}; see {worker.log}")
            time.sleep(0.1)

    def calls(self, result: Result) -> list[dict[str, Any]]:
        log = [e for e in self.sandbox.requests_log() if e.get("user") == _stack.USER_ID]
        result.gets = sum(e["method"] == "GET" for e in log)
        result.puts = sum(e["method"] == "PUT" for e in log)
        result.refused = sum(e["status"] == 429 for e in log)
        return log

    def tags(self) -> dict[str, set[str]]:
        out, skip = {}, 0
        while True:
            page = self.api("GET", f"/publications?limit=100&skip={skip}")
            for pub in page["items"]:
                out[pub["id"]] = {t.get("body") for t in pub["items"]["en-GB"].get("tags", {}).get("items", [])}
            skip += 100
            if skip >= page["total"]:
                return out

    # -- phases --------------------------------------------------------------------------------

    def burst(self, n: int, name: str) -> Result:
        items = [article(f"{name}-{i}") for i in range(n)]
        worker = self.start_worker(name, items)
        result = Result(name, n, fastest=fastest_schedule(2 * n), min_puts=n)
        try:
            events = [envelope("content_item.changed", item["id"]) for item in items]
            self.client.delete(STAGING)
            saved, self.intake_module.QUEUE = self.intake_module.QUEUE, STAGING
            try:
                for event in events:
                    self.intake.accept(event, enqueue=True)
            finally:
                self.intake_module.QUEUE = saved
            start = time.time()
            self.client.rename(STAGING, "celery")
            result.untraced = self.wait_traced([e["id"] for e in events], 3 * result.fastest + 60, worker)
            log = self.calls(result)
            result.seconds = max(e["timestamp"] for e in log) + LATENCY_MS / 1000 - start
        finally:
            self.procs.stop(worker)
        tags = self.tags()
        result.wrong = [i["id"] for i in items if tags.get(i["id"]) != {"sport"}]
        report(result)
        return result

    def replay(self) -> Result:
        plan = _corpus.timeline(REPLAY)
        retitled = {item for _, item in plan.retitles}
        worker = self.start_worker("replay", [track(item) for item in plan.items])
        result = Result("replay", len(plan.deliveries), seconds=plan.span)
        result.min_puts = len(plan.items) + sum(1 for item in retitled if last_gap(plan, item) > COALESCE)
        pending: dict[str, Future] = {}
        try:
            with ThreadPoolExecutor(4) as editors:
                start, retitles = time.monotonic(), list(plan.retitles)
                for at, event in plan.deliveries:
                    while retitles and retitles[0][0] <= at:
                        when, item = retitles.pop(0)
                        time.sleep(max(0.0, start + when - time.monotonic()))
                        pending[item] = editors.submit(self.api, "PUT", f"/publications/{item}",
                                                       {"items": {"en-GB": {"title": {"body": f"{item} (acoustic)"}}}},
                                                       True)
                    time.sleep(max(0.0, start + at - time.monotonic()))
                    item = event["payload"]["id"]
                    if item in pending and at >= max(t for t, e in plan.deliveries if e["payload"]["id"] == item):
                        pending.pop(item).result()  # the editor's change is saved before its webhook
                    self.intake.accept(dict(event), enqueue=True)
                last = time.monotonic()
            result.untraced = self.wait_traced([e["id"] for _, e in plan.deliveries], 120, worker)
            result.lag = time.monotonic() - last
            self.calls(result)
        finally:
            self.procs.stop(worker)
        tags = self.tags()
        result.wrong = [i for i in plan.items if tags.get(i) != ({"music", "acoustic"} if i in retitled else {"music"})]
        report(result)
        return result

    def close(self) -> None:
        self.procs.close()
        try:
            self.client.flushdb()
        except redis.RedisError:
            pass


def last_gap(plan: _corpus.Timeline, item: str) -> float:
    times = [at for at, e in plan.deliveries if e["payload"]["id"] == item]
    return times[-1] - times[-2]


def article(key: str) -> dict[str, Any]:
    return {"id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"bench-realistic/{key}")), "model": {"body": "Article"},
            "locales": ["en-GB"], "status": "published",
            "items": {"en-GB": {"title": {"body": f"Story {key}"}, "tags": {"items": []}}}}


def track(item: str) -> dict[str, Any]:
    return {"id": item, "model": {"body": "Track"}, "locales": ["en-GB"], "status": "published",
            "items": {"en-GB": {"title": {"body": item}, "tags": {"items": []}}}}


def envelope(event: str, item: str) -> dict[str, Any]:
    return {"id": str(uuid.uuid4()), "event": event, "created_on": int(time.time()),
            "performed_by": {"id": EDITOR}, "payload": {"id": item}}


def report(r: Result) -> None:
    rate = f"{r.deliveries / r.seconds:.1f} events/s, " if r.fastest else ""
    ratio = f"{r.fastest / r.seconds:.2f}x the fastest schedule ({r.fastest:.1f} s), " if r.fastest else ""
    print(f"  {r.name}: {r.deliveries} deliveries in {r.seconds:.1f} s, {rate}{ratio}GET {r.gets}, PUT {r.puts} "
          f"(min {r.min_puts}), 429 {r.refused}, lag {r.lag:.1f} s, wrong items {len(r.wrong)}, "
          f"untraced {r.untraced}", flush=True)


def section(results: list[Result], described: str, worker: str) -> str:
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [HEADING, "", f"One run of `python -m benchmarks.realistic` (part of `make bench`), {now}.",
             f"Machine: {described}.", "",
             f"Prepr: the sandbox in remote mode, {LATENCY_MS} ms per call, windows `{PREPR_WINDOWS}` per token "
             "(moving; 429 + Retry-After beyond). Worker: the Procfile's line, `" + worker.split(":", 1)[1].strip()
             + "`, default settings. Deliveries queued by the receiver's intake.", "",
             "| phase | deliveries | seconds | events/s | fastest schedule | ratio | GET/delivery | PUT/delivery "
             "| minimum PUT/delivery | 429 | lag s | wrong items |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
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
              f"retitled by an editor before their last event. Minimum PUT: one per item, two for a retitled item whose "
              f"last two events are more than COALESCE_SECONDS ({COALESCE:g} s) apart. Fastest schedule: "
              "2 calls per event, each sent as early as every window of Prepr allows, plus one latency.", ""]
    return "\n".join(lines)


def worker_line(pool: str) -> str:
    """The Procfile's worker line with its pool and concurrency replaced by `pool`'s."""
    import re

    line = re.sub(r"\s--(pool|concurrency)[ =]\S+|\s-[Pc] \S+", "", _stack.procfile_worker())
    return f"{line} {POOLS[pool]}"


def compare_pools() -> None:
    """The 300-event burst once per pool, one sandbox, in turn; a Markdown table on stdout."""
    rows = []
    for pool in POOLS:
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
        try:
            bench = Bench(work)
            results = [bench.burst(n, f"burst {n}") for n in BURSTS] + [bench.replay()]
            ok = True
        finally:
            if bench is not None:
                bench.close()
            if ok:
                shutil.rmtree(work, ignore_errors=True)
            else:
                print(f"realistic: failed; logs kept in {work}", file=sys.stderr)
    print(f"realistic: {time.monotonic() - began:.0f} s in all", flush=True)
    text = section(results, described, _stack.procfile_worker())
    print(text)
    _report.write_section(text, HEADING)
    if any(r.wrong or r.untraced for r in results):
        raise SystemExit("realistic: some items ended wrong (see above)")
    return results


if __name__ == "__main__":
    compare_pools() if "--pools" in sys.argv[1:] else main()
