"""`python -m benchmarks` (`make bench`): run every benchmark module's `main()` in turn.

A module named with a leading underscore is a helper, not a benchmark.
"""
from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path


def main() -> None:
    for info in sorted(pkgutil.iter_modules([str(Path(__file__).parent)]), key=lambda m: m.name):
        if info.name.startswith("_") or info.name in ("baselines", "fuzz"):  # fuzz: `make fuzz`
            continue
        module = importlib.import_module(f"benchmarks.{info.name}")
        if hasattr(module, "main"):
            module.main()


if __name__ == "__main__":
    main()
