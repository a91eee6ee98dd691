"""The article's bug: ten threads update a shared model without a lock.

`model["weight"] += delta` is a read, an add and a write. When another thread writes
between this thread's read and write, its update is lost, and the final weight comes
out below 1001.0 on some runs and right on others.

    python examples/article_racy.py [TRACE]      # records TRACE (default: article_racy.jsonl)
    tracelens report TRACE
"""

from __future__ import annotations

import sys
import threading

import tracelens

THREADS, UPDATES = 10, 1000


def main(trace: str) -> None:
    tracelens.configure(trace, stress=True)
    model = tracelens.watch({"weight": 1.0}, "model")

    def update_model(delta: float) -> None:
        model["weight"] += delta  # read, then write: not atomic

    def worker() -> None:
        for _ in range(UPDATES):
            update_model(0.1)

    threads = [threading.Thread(target=worker, name=f"worker-{i}") for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(f"weight = {model['weight']:.1f} (expected {1 + THREADS * UPDATES * 0.1:.1f})")
    tracelens.shutdown()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "article_racy.jsonl")
