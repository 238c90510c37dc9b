"""Long rule-file fuzz (`make fuzz-rules`): >= 3,000 mutated rule files, each loaded (and, when it
loads, evaluated and its tests run) in a child process with a memory cap, so a crash or a hang
is seen and counted, not suffered. Figures go to the `## Rule-file fuzz` section of RESULTS.md.

Outcomes per file: ok (loaded), errors (file:line:col errors only: the good outcome for a broken
file), bad errors (an error line without its place), traceback, crash (the process died), hang
(no answer within HANG_SECONDS).
"""
from __future__ import annotations

import argparse
import collections
import datetime as dt
import json
import random
import resource
import select
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

from benchmarks import _report

HEADING = "## Rule-file fuzz"
HANG_SECONDS = 20.0
MEMORY_BYTES = 2 * 1024**3


def child(listing: str) -> None:
    """Read file paths from the listing; print {"start"} then {"end", outcome} per file."""
    from tests.automation.mutations import check_file

    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BYTES, MEMORY_BYTES))
    for line in Path(listing).read_text().splitlines():
        path = Path(line.strip())
        print(json.dumps({"start": str(path)}), flush=True)
        started = time.perf_counter()
        try:
            loaded, problems = check_file(path)
            outcome = "bad errors" if problems else ("ok" if loaded else "errors")
            detail = problems[:1]
        except BaseException:  # noqa: BLE001 - the point is to count them
            outcome, detail = "traceback", [traceback.format_exc(limit=3)[-600:]]
        print(json.dumps({"end": str(path), "outcome": outcome, "seconds": time.perf_counter() - started,
                          "detail": detail}), flush=True)


def run(files: int, seed: int) -> dict:
    from tests.automation.mutations import mutate, random_case

    rng = random.Random(seed)
    counts: collections.Counter = collections.Counter()
    slowest, examples = 0.0, {}
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i in range(files):
            base, ops = random_case(rng)
            path = Path(tmp) / f"f{i:05d}.yaml"
            path.write_bytes(mutate(base, ops))
            paths.append(path)
        pending = list(paths)
        listing = Path(tmp) / "pending.txt"
        while pending:  # one child process per run of files; a new one after a crash or hang
            listing.write_text("".join(f"{p}\n" for p in pending))
            proc = subprocess.Popen([sys.executable, "-m", "benchmarks.fuzz_rules", "--child", str(listing)],
                                    stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parent.parent)
            assert proc.stdout
            current = None
            while True:
                ready, _, _ = select.select([proc.stdout], [], [], HANG_SECONDS)
                if not ready:
                    proc.kill()
                    counts["hang"] += 1
                    examples.setdefault("hang", current)
                    break
                line = proc.stdout.readline()
                if not line:
                    if current is not None:  # died in the middle of a file
                        counts["crash"] += 1
                        examples.setdefault("crash", f"{current}: exit {proc.wait()}")
                    break
                message = json.loads(line)
                if "start" in message:
                    current = message["start"]
                    continue
                counts[message["outcome"]] += 1
                slowest = max(slowest, message["seconds"])
                if message["outcome"] not in ("ok", "errors"):
                    examples.setdefault(message["outcome"], message["detail"])
                current = None
                pending.remove(Path(message["end"]))
            code = proc.wait()
            if current is not None:
                pending.remove(Path(current))
            elif pending and code:
                raise SystemExit(f"the checking process failed to start (exit {code})")
    return {"files": files, "seed": seed, "counts": dict(counts), "slowest": slowest, "examples": examples}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", metavar="LISTING", help="(internal) check the files listed")
    parser.add_argument("--files", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return 0
    started = time.perf_counter()
    result = run(args.files, args.seed)
    counts = result["counts"]
    bad = sum(counts.get(k, 0) for k in ("bad errors", "traceback", "crash", "hang"))
    text = "\n".join([
        HEADING, "",
        f"Run {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC on {_report.machine()}. "
        f"`make fuzz-rules` (benchmarks/fuzz_rules.py, seed {args.seed}): {args.files:,} mutations of the shipped "
        f"and fixture rule files (half: values and keys changed in the parsed file, written back as valid YAML; half: byte flips, cuts, copies, hostile fragments, spliced lines, mixed with those), each loaded in a "
        f"child process capped at {MEMORY_BYTES // 1024**3} GiB; a file that loads is also evaluated against four "
        f"events and its own rule tests. {time.perf_counter() - started:.0f} s in all.", "",
        "| outcome | files |", "|---|---:|",
        *(f"| {name} | {counts.get(name, 0):,} |" for name in
          ("ok", "errors", "bad errors", "traceback", "crash", "hang")),
        "", f"Slowest file: {result['slowest']:.2f} s. Goal: 0 tracebacks, 0 crashes, 0 hangs, every error at "
        f"file:line:col — {'met' if not bad else 'NOT met'}.",
        *([f"", f"First of each failure: `{json.dumps(result['examples'])[:800]}`"] if bad else []),
    ])
    print(text)
    if not args.no_write:
        _report.write_section(text, HEADING)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
