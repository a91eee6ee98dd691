"""A thread-pool counter bumped a few times per task: a run rarely loses anything.

Each task does ``counter["n"] += 1`` a few times; with so few accesses the recorded
run loses no update, but nothing orders the tasks' accesses: a data race that only
happens-before predicts. The tasks meet at a barrier first, so that each runs on its
own worker thread even on a busy machine.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor, as_completed

TASKS, BUMPS = 4, 6
counter = {"n": 0}
together = threading.Barrier(TASKS)


def bump() -> None:
    together.wait()
    for _ in range(BUMPS):
        counter["n"] += 1


def main() -> None:
    with ThreadPoolExecutor(4) as pool:
        for f in as_completed([pool.submit(bump) for _ in range(TASKS)]):
            f.result()
    print(f"n = {counter['n']} (expected {TASKS * BUMPS})")


if __name__ == "__main__":
    main()
