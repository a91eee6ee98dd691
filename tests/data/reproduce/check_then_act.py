"""A check and the act on it, meant to be atomic, with a remote write in between.

``withdraw`` checks the balance and then takes the money, inside
``tracelens.atomic("withdraw")``; ``close`` empties the account. In the recorded run
``close`` comes after; forced inside the region, the withdrawal overdraws.
``--fixed`` holds a lock across the check and the act and in ``close``.
"""

from __future__ import annotations

import sys
import threading
import time

import tracelens

account = {"balance": 100}
lock = threading.Lock()


def withdraw(fixed: bool) -> None:
    with lock if fixed else tracelens.atomic("withdraw"):
        if account["balance"] >= 80:
            account["balance"] -= 80


def close(fixed: bool) -> None:
    time.sleep(0.05)
    if fixed:
        with lock:
            account["balance"] -= account["balance"]
    else:
        account["balance"] -= account["balance"]


def main(fixed: bool) -> None:
    threads = [
        threading.Thread(target=withdraw, args=(fixed,), name="withdraw"),
        threading.Thread(target=close, args=(fixed,), name="close"),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(f"balance = {account['balance']}")


if __name__ == "__main__":
    main("--fixed" in sys.argv)
