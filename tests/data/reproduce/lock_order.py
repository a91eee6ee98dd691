"""Two threads take two locks in opposite orders: a deadlock waiting to happen.

``transfer`` takes ``accounts`` then ``audit``; ``report`` takes ``audit`` then
``accounts``. ``report`` starts a little later, so the recorded run finishes; forced,
each thread holds its first lock when the other asks for its second. ``--fixed``
takes the locks in one order in both.
"""

from __future__ import annotations

import sys
import threading
import time

accounts = threading.Lock()
audit = threading.Lock()
log: list[str] = []


def transfer() -> None:
    with accounts:  # noqa: SIM117 (one lock per line: each acquire its own site)
        with audit:
            log.append("transfer")


def report(fixed: bool) -> None:
    time.sleep(0.05)
    first, second = (accounts, audit) if fixed else (audit, accounts)
    with first:  # noqa: SIM117 (one lock per line: each acquire its own site)
        with second:
            log.append("report")


def main(fixed: bool) -> None:
    threads = [
        threading.Thread(target=transfer, name="transfer"),
        threading.Thread(target=report, args=(fixed,), name="report"),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(f"done: {sorted(log)}")


if __name__ == "__main__":
    main("--fixed" in sys.argv)
