"""How fast a model starts: a new process until `Engine.load_sync` returns, with the
float32 copy, the kept tokenizer (`engine/converted.py`) and transformers' kept import table
(`engine/import_cache.py`) against without any of them (the weights converted, the tokenizer
and the table built at every start, as before), and without the table alone, side by side.

Each start is its own process (imports included), the two ways taking turns; the copies
are made first, so "kept" is a warm start. The machine's load is printed: on a shared
CPU it moves every number.

    python benchmarks/start_time.py [MODEL ...] [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys

CHILD = """
import time
start = time.perf_counter()
import sys
from mlxchat.engine import converted, cpu, import_cache
if sys.argv[2] in ("before", "no-table"):
    import_cache.install = lambda: None
cpu.setup_process()
from mlx_lm.utils import load_tokenizer  # imported in both ways: "load alone" compares
if sys.argv[2] == "before":
    converted.restore = lambda model, source: False
    converted.store = lambda model, source: None
    converted.load_tokenizer = load_tokenizer
    import mlxchat.models.loader as models
    models.load_kept_tokenizer = load_tokenizer
from mlxchat.engine.engine import Engine
engine = Engine()
imported = time.perf_counter()
engine.load_sync(sys.argv[1])
loaded = time.perf_counter()
print(f"{loaded - start:.3f} {loaded - imported:.3f}")
engine.close()
"""


def start(model: str, way: str) -> tuple[float, float]:
    """Seconds from process start to a loaded model, and for the load alone."""
    out = subprocess.run(
        [sys.executable, "-c", CHILD, model, way],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return float(out[-2]), float(out[-1])


def main() -> None:
    """Measure and print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", default=["demo-translate", "demo"])
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    from mlxchat.engine import cpu

    cpu.setup_process()
    print(cpu.describe_cpu_path(), f"| {os.cpu_count()} CPUs")
    for model in args.models:
        start(model, "after")  # makes the copies: the starts below are warm
        times: dict[str, list[tuple[float, float]]] = {"before": [], "no-table": [], "after": []}
        loads = []
        for _ in range(args.rounds):
            for way in times:
                times[way].append(start(model, way))
                loads.append(os.getloadavg()[0])
        total = {way: statistics.median(t for t, _ in runs) for way, runs in times.items()}
        load = {way: statistics.median(t for _, t in runs) for way, runs in times.items()}
        print(
            f"{model}: to a loaded model {total['before']:.2f} s -> {total['after']:.2f} s "
            f"(load alone {load['before']:.2f} s -> {load['after']:.2f} s, "
            f"{load['before'] / load['after']:.1f}x); without the import table alone "
            f"{total['no-table']:.2f} s; median of {args.rounds}, "
            f"load average {statistics.median(loads):.1f}"
        )


if __name__ == "__main__":
    main()
