"""Configuration handed to a worker with a ``threading.Event``.

The main thread loads the configuration and sets an event; the worker waits for it
and reads the configuration. The racy version sets the event first and loads the
configuration after: the worker may read it half-filled. ``--fixed`` loads, then sets.

    python examples/event_handoff.py [--fixed] [TRACE]   # default: event_handoff.jsonl
    tracelens report TRACE
"""

from __future__ import annotations

import sys
import threading

import tracelens


def main(fixed: bool) -> None:
    config = tracelens.watch({}, "config")
    ready = threading.Event()

    def worker() -> None:
        ready.wait(5)  # recv: after the set
        print("worker sees", config.get("url"))

    t = threading.Thread(target=worker, name="worker")
    t.start()
    if fixed:
        config["url"] = "https://example.invalid"
        ready.set()  # send: everything written before it is visible after the wait
    else:
        ready.set()
        config["url"] = "https://example.invalid"  # BUG: written after the hand-off
    t.join()


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--fixed"]
    tracelens.configure(args[0] if args else "event_handoff.jsonl")
    main("--fixed" in sys.argv)
    tracelens.shutdown()
