"""The article's fix: the same update under a threading.Lock.

The final print reads the weight after the joins without the lock: that read is
ordered after every update by the joins, so it is not a race.

    python examples/article_locked.py [TRACE]
"""

from __future__ import annotations

import sys
import threading

import tracelens

THREADS, UPDATES = 10, 1000


def main(trace: str) -> None:
    tracelens.configure(trace, stress=True)
    model = tracelens.watch({"weight": 1.0}, "model")
    lock = threading.Lock()

    def update_model(delta: float) -> None:
        with lock:
            model["weight"] += delta

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
    main(sys.argv[1] if len(sys.argv) > 1 else "article_locked.jsonl")
