"""The realistic benchmark's phases: a sandbox as a remote Prepr, a worker per phase, bursts
and the corpus replay, each item's final state and the automation's calls checked.
"""
from __future__ import annotations

import json
import os
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
import requests
from limits import parse_many

from benchmarks import _corpus, _stack

REDIS_URL = os.environ.get("BENCH_REALISTIC_REDIS_URL", "redis://127.0.0.1:6379/10")
LATENCY_MS, PREPR_WINDOWS = 200, "35/second;800/minute"
COALESCE = 2.0  # COALESCE_SECONDS' default: a retitle further apart than this needs its own PUT
EDITOR = "b3e2e000-0000-4000-8000-0000000ed170"
STAGING = "bench:realistic:staging"
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

    def __init__(self, work: Path, worker_line: str | None = None, api: str = "publications") -> None:
        """`api`: the one dialect the sandbox speaks; the worker finds it out (PREPR_API unset)."""
        self.work, self.worker_line, self.dialect = work, worker_line, api
        self.items = f"/{api}"
        self.procs = _stack.Processes(work)
        self.client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
        self.sandbox = _stack.start_sandbox(self.procs, work / "sandbox", "--latency-ms", str(LATENCY_MS),
                                            "--rate-limit", PREPR_WINDOWS, "--api", api)
        (work / "rules.yaml").write_text(RULES)
        clean = {k: v for k, v in os.environ.items()
                 if k not in ("SENTRY_DSN", "REDIS_URL", "PREPR_RATE_LIMIT", "COALESCE_SECONDS", "PREPR_API")}
        self.env = {**clean, "CELERY_BROKER_URL": REDIS_URL, "PREPR_API_URL": self.sandbox.url,
                    "PREPR_TRACKING_URL": self.sandbox.url, "PREPR_ACCESS_TOKEN": _stack.TOKEN,
                    "PREPR_AUTOMATION_USER_ID": _stack.USER_ID, "RULES_PATH": str(work / "rules.yaml"),
                    "PREPR_CUSTOMERS_URL": self.sandbox.url,
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
        self.intake.accept(event, "queued")
        self.wait_traced([event["id"]], 60, worker)
        self.sandbox.admin("PUT", "remote", {"latency_ms": LATENCY_MS, "rate_limit": PREPR_WINDOWS})
        self.sandbox.admin("DELETE", "requests")
        return worker

    def wait_traced(self, ids: list[str], timeout: float, worker: Any) -> int:
        """Wait until every event's trace has a final outcome (not merged, retrying or waiting: its
        run has ended); return how many have none by `timeout`."""
        from prepr_automation import compact, history, store

        def final(raw: bytes | None) -> bool:
            outcome = compact.loads(raw).get("outcome") if raw else None
            return bool(outcome) and history.kind(outcome) not in history.PENDING_KINDS

        deadline = time.monotonic() + timeout
        while True:
            with self.client.pipeline(transaction=False) as pipe:
                for event_id in ids:
                    pipe.hget(store.trace_key(event_id), "run")
                missing = sum(1 for raw in pipe.execute() if not final(raw))
            if not missing or time.monotonic() > deadline:
                return missing
            if worker.poll() is not None:
                raise RuntimeError(f"the worker exited with {worker.returncode}; see {worker.log}")
            time.sleep(0.1)

    def retitle(self, item: str) -> None:
        """An editor's change of the title, as Prepr's editor saves it: in today's API the whole
        locale, read just before (the worker's own write may land between: its next run sees it)."""
        title = {"body": f"{item} (acoustic)"}
        if self.dialect == "publications":
            self.api("PUT", f"{self.items}/{item}", {"items": {"en-GB": {"title": title}}}, True)
            return
        current = self.api("GET", f"{self.items}/{item}?fields=items", editor=True)
        locale = {**current["items"]["en-GB"], "title": title}
        self.api("PUT", f"{self.items}/{item}", {"locales": ["en-GB"], "items": {"en-GB": locale}}, True)

    def calls(self, result: Result) -> list[dict[str, Any]]:
        log = [e for e in self.sandbox.requests_log() if e.get("user") == _stack.USER_ID]
        result.gets = sum(e["method"] == "GET" for e in log)
        result.puts = sum(e["method"] == "PUT" for e in log)
        result.refused = sum(e["status"] == 429 for e in log)
        return log

    def tags(self) -> dict[str, set[str]]:
        out, skip = {}, 0
        while True:
            page = self.api("GET", f"{self.items}?limit=100&skip={skip}")
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
            staging = self.intake_module.Intake(self.client, 3600, 3600, queue=STAGING)  # the list only
            for event in events:
                staging.accept(event, "queued")
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

    def replay(self, count: int) -> Result:
        plan = _corpus.timeline(count)
        retitled = {item for _, item in plan.retitles}
        worker = self.start_worker("replay", [track(item) for item in plan.items])
        result = Result("replay", len(plan.deliveries), seconds=plan.span)
        result.min_puts = len(plan.items) + sum(1 for item in retitled if ran_before_retitle(plan, item))
        pending: dict[str, Future] = {}
        try:
            with ThreadPoolExecutor(4) as editors:
                start, retitles = time.monotonic(), list(plan.retitles)
                for at, event in plan.deliveries:
                    while retitles and retitles[0][0] <= at:
                        when, item = retitles.pop(0)
                        time.sleep(max(0.0, start + when - time.monotonic()))
                        pending[item] = editors.submit(self.retitle, item)
                    time.sleep(max(0.0, start + at - time.monotonic()))
                    item = event["payload"]["id"]
                    if item in pending and at >= max(t for t, e in plan.deliveries if e["payload"]["id"] == item):
                        pending.pop(item).result()  # the editor's change is saved before its webhook
                    self.intake.accept(dict(event), "queued")
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


def ran_before_retitle(plan: _corpus.Timeline, item: str) -> bool:
    """Did a run of the item's earlier events have to happen before its retitle (so the retitle
    needs a second PUT)? Runs as COALESCE_SECONDS forms them: sliding, capped at four windows."""
    retitled_at = next(at for at, one in plan.retitles if one == item)
    times = [at for at, e in plan.deliveries if e["payload"]["id"] == item]
    first = last = times[0]
    for at in times[1:]:
        due = min(last + COALESCE, first + 4 * COALESCE)
        if at > due:  # the run so far was due before this event: it ran on its own
            if due < retitled_at:
                return True
            first = at
        last = at
    return False


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
