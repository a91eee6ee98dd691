"""A value published to another thread without synchronisation.

``load`` writes ``config["mode"]``; ``serve`` reads it a little later, so in the
recorded run it sees the value; forced the other way round, it reads the default.
``--fixed`` waits for an Event that ``load`` sets after its write.
"""

from __future__ import annotations

import sys
import threading
import time

config = {"mode": "default"}
loaded = threading.Event()
seen: list[str] = []


def load() -> None:
    config["mode"] = "production"
    loaded.set()


def serve(fixed: bool) -> None:
    if fixed:
        loaded.wait()
    else:
        time.sleep(0.05)
    seen.append(config["mode"])


def main(fixed: bool) -> None:
    threads = [
        threading.Thread(target=load, name="load"),
        threading.Thread(target=serve, args=(fixed,), name="serve"),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(f"serve saw mode {seen[0]}")


if __name__ == "__main__":
    main("--fixed" in sys.argv)
