"""Lazy initialisation without a lock: check-then-act on a shared cache.

Several threads find the cache empty and each builds the expensive client; all
but one of the clients are thrown away (or worse, two callers hold different ones).

    python examples/lazy_init.py [TRACE]
"""

from __future__ import annotations

import sys
import threading
import time

import tracelens


class Client:
    def __init__(self) -> None:
        time.sleep(0.001)  # connecting takes a while


def main(trace: str) -> None:
    tracelens.configure(trace, stress=True)
    cache = tracelens.watch({}, "cache")
    built = []
    start = threading.Barrier(8)  # all requests arrive at once

    def handle_request() -> None:
        start.wait()
        get_client()

    def get_client() -> Client:
        if "client" not in cache:  # check ...
            client = Client()
            built.append(client)
            cache["client"] = client  # ... then act: another thread may have done it too
        return cache["client"]  # type: ignore[no-any-return]

    threads = [threading.Thread(target=handle_request, name=f"request-{i}") for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(f"clients built: {len(built)} (expected 1)")
    tracelens.shutdown()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "lazy_init.jsonl")
