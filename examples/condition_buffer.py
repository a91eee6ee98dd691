"""Producer/consumer on a ``threading.Condition``, and a consumer that skips the lock.

The producer appends to a shared buffer under the condition and notifies; the
consumer waits for items. The racy consumer checks ``len(buffer)`` without holding
the condition's lock, racing with the producer's appends. ``--fixed`` checks it under
the lock with ``wait_for``.

    python examples/condition_buffer.py [--fixed] [TRACE]   # default: condition_buffer.jsonl
    tracelens report TRACE
"""

from __future__ import annotations

import sys
import threading
import time

import tracelens

ITEMS = 20


def main(fixed: bool) -> None:
    cond = threading.Condition()
    buffer = tracelens.watch([], "buffer")
    taken: list[int] = []

    def producer() -> None:
        for i in range(ITEMS):
            with cond:
                buffer.append(i)
                cond.notify()

    def consumer() -> None:
        while len(taken) < ITEMS:
            if fixed:
                with cond:
                    cond.wait_for(lambda: len(buffer) > 0, timeout=5)
                    taken.append(buffer.pop(0))
            else:
                if len(buffer) > 0:  # BUG: read without the lock
                    with cond:
                        taken.append(buffer.pop(0))
                else:
                    time.sleep(0.0005)

    threads = [threading.Thread(target=producer), threading.Thread(target=consumer)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    print(f"consumed {len(taken)} items")


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--fixed"]
    tracelens.configure(args[0] if args else "condition_buffer.jsonl")
    main("--fixed" in sys.argv)
    tracelens.shutdown()
