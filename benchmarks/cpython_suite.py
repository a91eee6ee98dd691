"""CPython's own threading, queue and asyncio-lock tests, plain and under ``tracelens run``.

    python benchmarks/cpython_suite.py [--no-instrument]

Runs ``python -m test`` on the interpreter's test package (present in pyenv builds)
for the modules whose objects the recorder patches, once plain and once recorded, and
prints each run's result line, test count and wall time side by side with the load
average. The recorded run must give the same result as the plain one: a program that
relies on the standard library's locks, conditions, queues or threads behaves the
same while recorded. The suite's test file runs the quick ones (``test_thread``,
``test_threading_local``, the asyncio lock and queue tests); this adds
``test_threading`` and ``test_queue`` (about 20 s plain).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

TESTS = [
    "test_thread",
    "test_threading",
    "test_queue",
    "test_threading_local",
    "test_asyncio.test_locks",
    "test_asyncio.test_queues",
]


def _run(cmd: list[str], cwd: str) -> tuple[list[str], float, int]:
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd)
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith(("Result:", "Total tests:"))]
    return lines, time.perf_counter() - t0, p.returncode


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-instrument", action="store_true", help="pass --no-instrument to run")
    args = ap.parse_args()
    print(f"python {sys.version.split()[0]}, load average {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        plain = _run([sys.executable, "-m", "test", *TESTS], tmp)
        extra = ["--no-instrument"] if args.no_instrument else []
        trace = os.path.join(tmp, "t.jsonl")
        cmd = [sys.executable, "-m", "tracelens", "run", *extra, "-o", trace, "-m", "test"]
        recorded = _run([*cmd, *TESTS], tmp)
    for name, (lines, wall, rc) in (("plain", plain), ("recorded", recorded)):
        print(f"  {name:9s} {wall:6.1f} s  exit {rc}  {' | '.join(lines)}")
    same = plain[0] == recorded[0] and plain[2] == recorded[2]
    print(f"same result: {same}; load average after {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
