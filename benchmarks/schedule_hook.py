"""What the scheduler's hook costs the pure-Python recorder when no schedule runs.

    python benchmarks/schedule_hook.py [--before TREE] [--events N] [--repeat R]

``py_record`` checks ``_core.schedule_point`` after every event. This runs the same
loop of N reads and writes of a watched dict with ``TRACELENS_PURE_PYTHON=1`` in fresh
processes, alternating this tree and TREE (default: /work/main, or any tree without the
hook), and prints the median CPU ns per access of each, their ratio and the load average.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_CHILD = r"""
import sys, tracelens
tracelens.configure(sys.argv[1])
d = tracelens.watch({"n": 0}, "d")
for _ in range(int(sys.argv[2])):
    d["n"] = d["n"] + 1
tracelens.shutdown()
"""


def _cpu(tree: Path, events: int, trace: Path) -> float:
    env = {**os.environ, "TRACELENS_PURE_PYTHON": "1", "PYTHONPATH": str(tree)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(
        [sys.executable, "-c", _CHILD, str(trace), str(events)], env=env, check=True, cwd=tree
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--before", type=Path, default=Path("/work/main"))
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=7)
    a = ap.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    times: dict[str, list[float]] = {"before": [], "this": []}
    with tempfile.TemporaryDirectory() as tmp:
        trace = Path(tmp) / "t.jsonl"
        for _ in range(a.repeat):
            times["before"].append(_cpu(a.before, a.events, trace))
            times["this"].append(_cpu(ROOT, a.events, trace))
    per = {k: statistics.median(v) / (2 * a.events) * 1e9 for k, v in times.items()}
    for k, v in per.items():
        print(f"{k:>6}: {v:,.0f} CPU ns per access (median of {a.repeat})")
    print(f" ratio: {per['this'] / per['before']:.3f}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
