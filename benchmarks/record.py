"""How much does recording cost? ns per recorded access, against a bare-logging baseline.

    python benchmarks/record.py [--events N] [--repeat R]

Measured side by side in one run, medians of R repeats, on 1 and 4 threads:
  plain     the same loop on an unwatched dict (what the program costs without tracelens)
  baseline  the loop plus orjson.dumps() of a comparable event dict and a buffered write
            (the cheapest a structured logger could possibly be)
  tracelens the loop on a watched dict with tracelens recording to a file, the final
            flush included (everything the recorder costs, background writing too)
Then the order-fidelity check on the article's racy example under stress=True.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import tracelens  # noqa: E402
from tracelens.testing import order_fidelity, read_events  # noqa: E402


def _threads(n_threads: int, body: Callable[[int], None], n: int) -> float:
    per = n // n_threads
    ts = [threading.Thread(target=body, args=(per,)) for _ in range(n_threads)]
    t0 = time.perf_counter()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return time.perf_counter() - t0


def plain(n_threads: int, n: int, tmp: Path) -> float:
    d = {"k": 0}

    def body(per: int) -> None:
        for i in range(per):
            d["k"] = i

    return _threads(n_threads, body, n)


def baseline(n_threads: int, n: int, tmp: Path) -> float:
    d = {"k": 0}
    pid = os.getpid()
    f = open(tmp / "baseline.jsonl", "wb", buffering=1 << 16)  # noqa: SIM115
    dumps, opt, mono = orjson.dumps, orjson.OPT_APPEND_NEWLINE, time.monotonic_ns

    def body(per: int) -> None:
        for i in range(per):
            d["k"] = i
            f.write(
                dumps(
                    {
                        "tl": 1,
                        "event": "write",
                        "seq": i,
                        "ts": mono(),
                        "pid": pid,
                        "unit": "t1",
                        "tid": 1,
                        "thread": "Thread-1",
                        "var": "d['k']",
                        "value": i,
                        "file": __file__,
                        "line": 60,
                        "func": "body",
                    },
                    option=opt,
                )
            )

    elapsed = _threads(n_threads, body, n)
    t0 = time.perf_counter()
    f.close()
    return elapsed + time.perf_counter() - t0


def recorded(n_threads: int, n: int, tmp: Path) -> float:
    path = tmp / "tracelens.jsonl"
    path.unlink(missing_ok=True)
    tracelens.configure(path)
    d = tracelens.watch({"k": 0}, "d")

    def body(per: int) -> None:
        for i in range(per):
            d["k"] = i

    elapsed = _threads(n_threads, body, n)
    t0 = time.perf_counter()
    tracelens.shutdown()
    return elapsed + time.perf_counter() - t0


def fidelity() -> tuple[int, int]:
    with tempfile.TemporaryDirectory() as tmp:
        trace = Path(tmp) / "racy.jsonl"
        subprocess.run(
            [sys.executable, "examples/article_racy.py", str(trace)],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            check=True,
            capture_output=True,
        )
        f = order_fidelity(read_events(trace))
    return f.checked, f.consistent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    n = args.events
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} cpus, {n} accesses, "
        f"median of {args.repeat}"
    )
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        for n_threads in (1, 4):
            times: dict[str, list[float]] = {"plain": [], "baseline": [], "tracelens": []}
            for _ in range(args.repeat):  # interleaved, so drift hits all three alike
                times["plain"].append(plain(n_threads, n, tmp))
                times["baseline"].append(baseline(n_threads, n, tmp))
                times["tracelens"].append(recorded(n_threads, n, tmp))
            ns = {k: statistics.median(v) / n * 1e9 for k, v in times.items()}
            print(f"\n{n_threads} thread(s):")
            for k, v in ns.items():
                print(f"  {k:10s} {v:8.0f} ns/access")
            over_base = (ns["tracelens"] - ns["plain"]) / (ns["baseline"] - ns["plain"])
            whole = ns["tracelens"] / ns["baseline"]
            print(f"  tracelens / baseline (whole loop):         {whole:.2f}x")
            print(f"  tracelens / baseline (logging cost only):  {over_base:.2f}x")
    checked, consistent = fidelity()
    print(
        f"\norder fidelity, article_racy.py under stress=True: {consistent}/{checked} reads saw "
        f"the latest recorded write ({100 * consistent / max(checked, 1):.1f}%)"
    )


if __name__ == "__main__":
    main()
