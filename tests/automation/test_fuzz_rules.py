"""Rule-file fuzz: mutations of the shipped and fixture rule files never give a traceback, only
`file:line:col` errors, within bounded time (the hypothesis deadline catches a hang). The long
run (>= 3,000 files, crashes and memory included) is `make fuzz-rules`."""
from __future__ import annotations

import tempfile
from datetime import timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings, strategies as st

from .mutations import OPS, SEEDS, check_file, mutate

STEPS = st.lists(st.tuples(st.sampled_from(OPS), st.integers(0, 2**20), st.integers(0, 2**20)),
                 min_size=1, max_size=6)
DATA_STEPS = st.lists(st.tuples(st.just("data"), st.integers(0, 2**20), st.integers(0, 2**20)),
                      min_size=1, max_size=4)  # valid YAML, so the validators and the engine are reached


@settings(max_examples=400, deadline=timedelta(seconds=10), suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.sampled_from(SEEDS), steps=STEPS | DATA_STEPS)
def test_mutated_rule_files_give_errors_at_their_place(seed: bytes, steps: list) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzzed.yaml"
        path.write_bytes(mutate(seed, steps))
        assert check_file(path)[1] == []


def test_the_seeds_are_real_rule_files() -> None:
    assert len(SEEDS) >= 15 and all(b"rules:" in s or b":" in s for s in SEEDS)
