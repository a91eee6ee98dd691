"""A dict iterated while another thread inserts ("dictionary changed size during iteration").

A registry is iterated by a reporter thread while a worker registers new entries.
Inserting a key writes the dict's key set (``registry``), iterating reads it, so
the trace shows the race even on runs where Python does not raise. ``--fixed`` takes
a lock around both, and iterates a copy.

    python examples/dict_iteration.py [--fixed] [TRACE]   # default: dict_iteration.jsonl
    tracelens report TRACE
"""

from __future__ import annotations

import sys
import threading

import tracelens


def main(fixed: bool) -> None:
    registry = tracelens.watch({}, "registry")
    lock = threading.Lock()
    errors: list[str] = []

    def worker() -> None:
        for i in range(200):
            if fixed:
                with lock:
                    registry[f"k{i}"] = i
            else:
                registry[f"k{i}"] = i

    def reporter() -> None:
        for _ in range(50):
            try:
                if fixed:
                    with lock:
                        snapshot = registry.copy()
                    sum(snapshot.values())
                else:
                    sum(1 for _ in registry)
            except RuntimeError as e:  # dictionary changed size during iteration
                errors.append(str(e))

    threads = [threading.Thread(target=worker), threading.Thread(target=reporter)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(f"{len(registry)} entries, {len(errors)} iteration errors")


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--fixed"]
    tracelens.configure(args[0] if args else "dict_iteration.jsonl", stress=True)
    main("--fixed" in sys.argv)
    tracelens.shutdown()
