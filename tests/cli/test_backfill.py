"""`prepr-automation backfill` over 250+ sandbox items, with a real worker, two interruptions
(Ctrl-C and a hard kill) and resumes: every item is enqueued and processed exactly once."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cli import main
from tests.conftest import BIN, Processes, Sandbox
from tests.tasks.conftest import Service, tag_names

RULES = """
version: 1
rules:
  - id: respect-opt-out
    on: content_item.*
    when: {tags: {in: [no-automation]}}
    stop: true
    do: []
  - id: tag-stories
    on: [content_item.created, content_item.changed]
    when:
      model: {eq: Article}
      title: {matches: "^Story "}
    do:
      - add_tags: [backfilled]
  - id: another-rule
    on: content_item.changed
    when: {model: {eq: Article}}
    do:
      - add_tags: [not-from-backfill]
"""


def _pub(title: str, model: str = "Article", tags: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"model": {"body": model}, "locales": ["en-GB"], "status": "published",
            "items": {"en-GB": {"title": {"body": title}, "tags": {"items": [{"body": t} for t in tags]}}}}


SEED = {"publications": [_pub(f"Story {n}") for n in range(250)]
        + [_pub(f"Other {n}") for n in range(5)]                              # listed; the worker says no
        + [_pub(f"Story opted out {n}", tags=("no-automation",)) for n in range(2)]  # the guard stops them
        + [_pub(f"Story {n}", model="News") for n in range(20)]}               # the filter leaves them out


@pytest.fixture
def backfill_service(processes: Processes, redis_url: str, sandbox_factory, tmp_path: Path) -> Service:
    service = Service(processes, redis_url, sandbox_factory(seed=SEED, api="publications"), tmp_path)
    service.rules(RULES)
    return service


def start(service: Service, *args: str) -> subprocess.Popen:
    return service.processes.start([str(BIN / "prepr-automation"), "backfill", "tag-stories", *args],
                                   service.env(PREPR_RATE_LIMIT="40"), f"backfill-{time.monotonic_ns()}")


def enqueued(service: Service) -> int:
    keys = [k for k in service.redis.keys("pa:backfill:tag-stories:*:ids")]
    return sum(service.redis.scard(k) for k in keys)


def interrupt_when(service: Service, proc: subprocess.Popen, count: int, sig: int) -> None:
    deadline = time.monotonic() + 60
    while enqueued(service) < count:
        assert proc.poll() is None, Path(proc.log_path).read_text()  # type: ignore[attr-defined]
        assert time.monotonic() < deadline, "backfill too slow"
        time.sleep(0.02)
    os.kill(proc.pid, sig)
    proc.wait(30)


def test_interrupted_twice_then_resumed_processes_each_item_once(backfill_service: Service) -> None:
    service, sandbox = backfill_service, backfill_service.sandbox
    dry = service.cli("backfill", "tag-stories", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "would enqueue 257 item(s)" in dry.stdout
    assert "Prepr filter: model[id]=Article" in dry.stdout and "title matches" in dry.stdout
    assert service.redis.keys("pa:*") == []  # nothing enqueued, traced or remembered
    assert service.redis.llen("bulk") == 0

    service.start_worker(concurrency=2, PREPR_RATE_LIMIT="40")
    first = service.cli("backfill", "tag-stories", "--limit", "40")
    assert first.returncode == 0, first.stderr
    assert "enqueued 40 item(s)" in first.stdout and "--limit reached" in first.stdout
    run_id = re.search(r"\(run ([0-9a-f]+)\)", first.stdout).group(1)  # type: ignore[union-attr]

    second = start(service)
    interrupt_when(service, second, 100, signal.SIGINT)
    assert second.returncode == 128 + signal.SIGINT
    assert "stopped by SIGINT" in Path(second.log_path).read_text()  # type: ignore[attr-defined]
    third = start(service)
    interrupt_when(service, third, 170, signal.SIGKILL)
    assert third.returncode == -signal.SIGKILL

    last = service.cli("backfill", "tag-stories")
    assert last.returncode == 0, last.stderr
    assert f"(run {run_id})" in last.stdout and "resuming" in last.stdout
    done = int(re.search(r"enqueued (\d+) item", last.stdout).group(1))  # type: ignore[union-attr]
    skipped = int(re.search(r"(\d+) skipped", last.stdout).group(1))  # type: ignore[union-attr]
    assert done + skipped == 257 and 0 < done < 257 - 100

    for item_id in ids_of(sandbox, "Article"):
        service.wait(f"backfill-{run_id}-{item_id}", timeout=120)
    assert len(service.redis.keys(f"pa:trace:backfill-{run_id}-*")) == 257

    calls = Counter((r["method"], r["path"]) for r in sandbox.requests())
    for item_id in ids_of(sandbox, "Article"):
        assert calls[("GET", f"/publications/{item_id}")] == 1, item_id
    for item_id in ids_of(sandbox, "News"):
        assert calls[("GET", f"/publications/{item_id}")] == 0
    stories = [p for p in all_pubs(sandbox) if model(p) == "Article" and title(p).startswith("Story ")
               and "opted" not in title(p)]
    assert len(stories) == 250
    for pub in stories:
        assert calls[("PUT", f"/publications/{pub['id']}")] == 1
        assert tag_names(pub) == ["backfilled"]
    for pub in all_pubs(sandbox):
        if pub not in stories:
            assert calls[("PUT", f"/publications/{pub['id']}")] == 0, title(pub)

    trace = service.cli("trace", f"backfill-{run_id}-{stories[0]['id']}")
    assert trace.returncode == 0, trace.stderr
    assert "rule tag-stories fired" in trace.stdout and "another-rule" not in trace.stdout

    again = service.cli("backfill", "tag-stories")
    assert "enqueued 0 item(s)" in again.stdout and "257 skipped" in again.stdout
    fresh = service.cli("backfill", "tag-stories", "--dry-run", "--restart")
    assert "would enqueue 257 item(s)" in fresh.stdout
    assert service.redis.llen("bulk") == 0


def all_pubs(sandbox: Sandbox) -> list[dict[str, Any]]:
    return list(sandbox.client().list_items())


def title(pub: dict[str, Any]) -> str:
    return ((pub.get("items") or {}).get("en-GB") or {}).get("title", {}).get("body", "")


def model(pub: dict[str, Any]) -> str:
    return (pub.get("model") or {}).get("body", "")


def ids_of(sandbox: Sandbox, model_name: str) -> list[str]:
    return [p["id"] for p in all_pubs(sandbox) if model(p) == model_name]


def test_refuses_what_it_cannot_run(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES + """
  - id: assets-only
    on: asset.created
    do: [{add_tags: [x]}]
  - id: switched-off
    disabled: not now
    on: content_item.changed
    do: [{add_tags: [x]}]
""")
    env = {"PREPR_ACCESS_TOKEN": "t", "RULES_PATH": str(rules), "PREPR_API_URL": "http://127.0.0.1:9"}
    runner = CliRunner()
    cases = {("nope",): "no rule 'nope'", ("assets-only",): "no content-item event",
             ("switched-off",): "is disabled", ("tag-stories", "--filter", "{"): "--filter is not JSON",
             ("tag-stories", "--filter", '{"title": {"matches": "x"}}'): "--filter: title"}
    for args, message in cases.items():
        result = runner.invoke(main, ["backfill", *args], env=env)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output, (args, result.output)


def test_progress_follows_the_worker_and_ends_with_a_tally(processes: Processes, redis_url: str,
                                                           sandbox_factory, tmp_path: Path) -> None:
    """Outcomes are read from the jobs' traces: 3 tagged, 2 the worker finds nothing to do for, and
    one Prepr refuses to write (dead-lettered); exit 1 because one was."""
    seed = {"publications": [_pub(f"Story {n}") for n in range(4)] + [_pub(f"Other {n}") for n in range(2)]}
    service = Service(processes, redis_url, sandbox_factory(seed=seed, api="publications"), tmp_path)
    service.rules(RULES)
    refused = next(p["id"] for p in all_pubs(service.sandbox) if title(p) == "Story 3")
    service.sandbox.fault(f"/publications/{refused}", 400, method="PUT", times=None)
    service.start_worker(concurrency=2)
    done = service.cli("backfill", "tag-stories")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "enqueued 6 item(s)" in done.stdout
    assert "processed: 3 done, 2 no change, 0 failed, 1 dead-lettered" in done.stdout
    assert "dead-letters list" in done.stderr
    assert "processed" in done.stderr and "6/6" in done.stderr  # the bar's last state: every job processed
