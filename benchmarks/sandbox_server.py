"""The sandbox's HTTP server against gunicorn's threaded worker, serving the same app, side by side.

The end-to-end benchmark runs the sandbox on the same two cores as the worker, so its CPU per
API call counts against the project. Both targets serve `sandbox.app.create_app` over one data
dir; the baseline is gunicorn as the sandbox ran before (one process, gthread, 16 threads,
keep-alive 75 s). Load: CLIENTS processes, each one keep-alive connection sending
`GET /publications/{id}?fields=...` as fast as answers come (the worker's GET). Targets take
turns, ROUNDS times (1 s warm-up + SECONDS measured); the figure to read is the ratio of server
CPU per request. Environment: BENCH_SANDBOX_ROUNDS (3), BENCH_SANDBOX_SECONDS (3).
"""
from __future__ import annotations

import datetime
import http.client
import json
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

from benchmarks import _report
from benchmarks._stack import BIN, Processes, cpu_seconds, free_port, terminated_cleanly

HEADING = "## Sandbox server"
ROUNDS = int(os.environ.get("BENCH_SANDBOX_ROUNDS", "3"))
SECONDS = float(os.environ.get("BENCH_SANDBOX_SECONDS", "3"))
CLIENTS = 4
TOKEN = "bench-sandbox-token"


def _client(port: int, path: str, seconds: float, out: "multiprocessing.Queue[int]") -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    done, end = 0, time.monotonic() + seconds
    while time.monotonic() < end:
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"the server answered {response.status}")
        done += 1
    out.put(done)


def _load(port: int, path: str, seconds: float) -> int:
    out: multiprocessing.Queue[int] = multiprocessing.Queue()
    clients = [multiprocessing.Process(target=_client, args=(port, path, seconds, out)) for _ in range(CLIENTS)]
    for c in clients:
        c.start()
    total = sum(out.get(timeout=seconds + 30) for _ in clients)
    for c in clients:
        c.join()
    return total


def _wait(port: int) -> str:
    deadline = time.monotonic() + 30
    while True:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/publications?limit=1&fields=id", headers={"Authorization": f"Bearer {TOKEN}"})
            return json.loads(conn.getresponse().read())["items"][0]["id"]
        except (OSError, ValueError, KeyError, IndexError, http.client.HTTPException):
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing answered on port {port}") from None
            time.sleep(0.1)


def main() -> dict[str, list[tuple[float, float]]]:
    work = Path(tempfile.mkdtemp(prefix="bench-sandbox-"))
    procs = Processes(work)
    env = {**os.environ, "PREPR_ACCESS_TOKEN": TOKEN}
    described = _report.machine()
    results: dict[str, list[tuple[float, float]]] = {"gunicorn gthread (before)": [], "sandbox server": []}
    with terminated_cleanly():
        try:
            data = work / "data"
            ports = {name: free_port() for name in results}
            factory = f"sandbox.app:create_app({str(data)!r}, {TOKEN!r})"
            started = {
                "gunicorn gthread (before)": procs.start("gunicorn", [
                    str(BIN / "gunicorn"), factory, "--bind", f"127.0.0.1:{ports['gunicorn gthread (before)']}",
                    "--workers", "1", "--worker-class", "gthread", "--threads", "16", "--keep-alive", "75",
                    "--log-level", "warning"], env),
            }
            item = _wait(ports["gunicorn gthread (before)"])  # the first one seeds the data dir
            started["sandbox server"] = procs.start("sandbox", [
                sys.executable, "-m", "sandbox", "--port", str(ports["sandbox server"]), "--data-dir", str(data)], env)
            _wait(ports["sandbox server"])
            path = f"/publications/{item}?fields=title,intro,tags"
            print(f"sandbox server: {ROUNDS} rounds x {SECONDS:g} s, {CLIENTS} keep-alive clients", flush=True)
            for _ in range(ROUNDS):
                for name, proc in started.items():
                    _load(ports[name], path, 1.0)
                    before, t0 = cpu_seconds(proc.pid), time.perf_counter()
                    served = _load(ports[name], path, SECONDS)
                    cpu, elapsed = cpu_seconds(proc.pid) - before, time.perf_counter() - t0
                    results[name].append((served / elapsed, 1000 * cpu / served))
                    print(f"  {name:<26} {served / elapsed:8,.0f} req/s  server CPU {1000 * cpu / served:.3f} ms/req",
                          flush=True)
        finally:
            procs.close()
            shutil.rmtree(work, ignore_errors=True)
    text = section(results, described)
    print(text)
    _report.write_section(text, HEADING)
    return results


def section(results: dict[str, list[tuple[float, float]]], described: str) -> str:
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    rows = {name: (median(r for r, _ in runs), median(c for _, c in runs)) for name, runs in results.items()}
    (base_rate, base_cpu), (rate, cpu) = rows["gunicorn gthread (before)"], rows["sandbox server"]
    lines = [HEADING, "", f"One run of `python -m benchmarks.sandbox_server` (part of `make bench`), {now}.",
             f"Machine: {described}.", "",
             f"The sandbox app served by each server in turn, {ROUNDS} rounds of {SECONDS:g} s; {CLIENTS} client "
             "processes on one keep-alive connection each, `GET /publications/{id}?fields=title,intro,tags`. "
             "Medians of the rounds.", "",
             "| server | req/s | server CPU ms/request |", "|---|---:|---:|"]
    lines += [f"| {name} | {r:,.0f} | {c:.3f} |" for name, (r, c) in rows.items()]
    lines += ["", f"Sandbox server / gunicorn: {rate / base_rate:.2f}× the requests per second at "
              f"{cpu / base_cpu:.2f}× the CPU per request.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
