"""A trace file without newlines, as a whole ``tracelens report`` in a fresh process.

    python benchmarks/no_newlines.py [--mib 100 1024] [--repeat 3]

For each size, a file of that many MiB of ``x`` (no newline) is reported on with
``TRACELENS_NO_CACHE=1``; printed: the median wall time, the peak RSS of the child
(``os.wait4``), its exit status and its stderr. Expected: exit 2 and one line
``tracelens: error: FILE:1: line longer than 67,108,864 bytes ...`` at every size, in
time and memory that do not grow with the file (the reader stops at the limit).
Before, 100 MiB peaked near 950 MB in ``scan_ndjson`` and 1 GiB went quadratic in the
careful reader and aborted with a Rust out-of-memory error.

Run it on a quiet machine: the load average is printed before and after.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _once(cmd: list[str], env: dict[str, str]) -> tuple[float, int, int, str]:
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    assert p.stderr is not None
    err = p.stderr.read().decode(errors="replace")
    _, status, ru = os.wait4(p.pid, 0)
    return time.perf_counter() - t0, ru.ru_maxrss, os.waitstatus_to_exitcode(status), err


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mib", type=int, nargs="+", default=[100, 1024])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    env = {**os.environ, "TRACELENS_NO_CACHE": "1"}
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        for mib in args.mib:
            path = Path(tmp) / f"x{mib}.jsonl"
            with open(path, "wb") as f:
                block = b"x" * (1 << 20)
                for _ in range(mib):
                    f.write(block)
            cmd = [sys.executable, "-m", "tracelens", "report", str(path)]
            runs = [_once(cmd, env) for _ in range(args.repeat)]
            wall = statistics.median(r[0] for r in runs)
            rss = max(r[1] for r in runs) / 1024
            codes = sorted({r[2] for r in runs})
            lines = runs[-1][3].strip().splitlines()
            print(f"{mib:>6} MiB  {wall:6.2f} s  peak RSS {rss:7.0f} MB  exit {codes}")
            print(f"        stderr ({len(lines)} line(s)): {lines[0] if lines else ''}")
            path.unlink()
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
