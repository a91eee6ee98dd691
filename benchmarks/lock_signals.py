"""Stress: random signals whose handler raises KeyboardInterrupt, against ``with lock:``.

    python benchmarks/lock_signals.py                   # 2,000 interrupts a path
    python benchmarks/lock_signals.py --interrupts 500 --seed 3

Each path runs in a fresh process (``tracelens.configure`` into a temporary file, then a
loop of ``with lock: n += 1`` on a recorded ``threading.Lock``), with a one-shot timer
(``setitimer``, a random 20-300 us) whose ``SIGALRM`` handler raises KeyboardInterrupt.
After each interrupt the loop checks whether the lock is still held outside any
``with`` body: a *leak* (the interrupt landed after the acquire and before the release
could run), released then, and counted. Paths: ``plain`` (no tracelens: the C lock of
the standard library, the baseline), ``c`` (the C accelerator: ``LockCore``'s C
methods) and ``python`` (``TRACELENS_PURE_PYTHON=1``: ``locks._PyLockCore``, whose
``__exit__`` entry is a window). Prints interrupts, leaks and leaks per 1,000 per path,
and the load average before and after (the counts do not depend on the load; how
many loop iterations fit between two signals does).
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def child(interrupts: int, seed: int, record: bool) -> None:
    """The stressed program: prints ``interrupts leaks iterations``."""
    if record:
        import tracelens

        tracelens.configure(Path(tempfile.mkdtemp()) / "trace.jsonl")
    lock = threading.Lock()
    rng = random.Random(seed)

    def interrupt(_sig: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGALRM, interrupt)
    seen = leaks = n = 0
    while seen < interrupts:
        try:
            signal.setitimer(signal.ITIMER_REAL, rng.uniform(20e-6, 300e-6))
            while True:
                with lock:
                    n += 1
        except KeyboardInterrupt:
            seen += 1
            if lock.locked():
                leaks += 1
                lock.release()
    signal.setitimer(signal.ITIMER_REAL, 0)
    print(seen, leaks, n, flush=True)
    if record:
        tracelens.shutdown()


def run(path: str, interrupts: int, seed: int) -> tuple[int, int, int]:
    env = {k: v for k, v in os.environ.items() if k != "TRACELENS_PURE_PYTHON"}
    if path == "python":
        env["TRACELENS_PURE_PYTHON"] = "1"
    cmd = [sys.executable, __file__, "--child", path, "--interrupts", str(interrupts)]
    out = subprocess.run(
        [*cmd, "--seed", str(seed)], env=env, cwd=ROOT, capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        raise SystemExit(f"{path}: exit {out.returncode}: {out.stderr[-2000:]}")
    seen, leaks, n = map(int, out.stdout.split())
    return seen, leaks, n


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--interrupts", type=int, default=2000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--child", choices=["plain", "c", "python"])
    a = p.parse_args()
    if a.child:
        child(a.interrupts, a.seed, record=a.child != "plain")
        return
    sys.path.insert(0, str(ROOT))
    from tracelens.record import _core

    print(f"load average before {os.getloadavg()}")
    paths = ["plain", "c", "python"] if _core.speedups is not None else ["plain", "python"]
    for path in paths:
        seen, leaks, n = run(path, a.interrupts, a.seed)
        print(
            f"{path:7} interrupts {seen:6}  leaks {leaks:5}  per 1,000 {1000 * leaks / seen:7.1f}"
            f"  (loop iterations {n})"
        )
    print(f"load average after {os.getloadavg()}")


if __name__ == "__main__":
    main()
