"""A counter bumped from a thread pool's tasks (concurrent.futures).

Every task does ``counter["n"] += 1``: a read and a write that other tasks interleave
with. ``--fixed`` makes each task return its count and adds the results after
``as_completed`` hands them over (no shared write at all).

    python examples/pool_counter.py [--fixed] [TRACE]   # default: pool_counter.jsonl
    tracelens report TRACE
"""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor, as_completed

import tracelens

TASKS, BUMPS = 8, 200


def main(fixed: bool) -> None:
    counter = tracelens.watch({"n": 0}, "counter")

    def task() -> int:
        if fixed:
            return BUMPS
        for _ in range(BUMPS):
            counter["n"] += 1
        return 0

    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(task) for _ in range(TASKS)]
        for f in as_completed(futures):
            if fixed:
                counter["n"] += f.result()
    print(f"n = {counter['n']} (expected {TASKS * BUMPS})")


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--fixed"]
    tracelens.configure(args[0] if args else "pool_counter.jsonl", stress=True)
    main("--fixed" in sys.argv)
    tracelens.shutdown()
