"""Run every benchmark: `python -m bench` (or `./dev bench`). Each prints its own figures."""

from __future__ import annotations

import importlib
import sys
import time

BENCHES = ["bench_matching", "bench_search", "bench_market", "bench_engine", "bench_history"]
BENCHES.append("bench_widgets")


def main() -> None:
    names = sys.argv[1:] or BENCHES
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        print(f"== {name} ==", flush=True)
        started = time.perf_counter()
        sys.argv = [name]
        module.main()
        print(f"   ({time.perf_counter() - started:.1f} s)\n", flush=True)


if __name__ == "__main__":
    main()
