"""A result handed over through a queue, and the bug of touching it after ``put``.

The producer fills a dict and puts it on a ``queue.Queue``; the consumer ``get``s it
and reads it. The racy version keeps writing the dict after the ``put``: those writes
are not ordered with the consumer's reads. ``--fixed`` finishes the dict first.

    python examples/queue_handoff.py [--fixed] [TRACE]   # default: queue_handoff.jsonl
    tracelens report TRACE
"""

from __future__ import annotations

import queue
import sys
import threading

import tracelens


def main(fixed: bool) -> None:
    q: queue.Queue[object] = queue.Queue()
    result = tracelens.watch({}, "result")

    def producer() -> None:
        result["rows"] = 10
        if fixed:
            result["status"] = "done"
        q.put(result)  # the hand-off: send before the item is visible
        if not fixed:
            result["status"] = "done"  # BUG: written after the hand-off

    t = threading.Thread(target=producer, name="producer")
    t.start()
    got = q.get(timeout=5)  # recv: after the matching put
    print(got.get("rows"), got.get("status"))
    t.join()


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--fixed"]
    tracelens.configure(args[0] if args else "queue_handoff.jsonl")
    main("--fixed" in sys.argv)
    tracelens.shutdown()
