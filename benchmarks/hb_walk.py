"""Benchmark: the happens-before walk compiled (``_clockwalk``) against pure Python.

    python benchmarks/hb_walk.py TRACE [--repeat 5]

In one process (as ``benchmarks/report.py``'s in-process split): loads TRACE once
(``load``), then, alternating the two walks within each round, times

* ``analysis``: ``analyze(trace)``, with ``clocks.compiled`` set (``c``) or ``None``
  (``py``, what ``TRACELENS_PURE_PYTHON=1`` gives);
* ``render``: ``render(report, "json")`` of the report;
* ``walks``: each ``vector_clocks`` call that ``analyze`` made (captured on the first
  round), alone, on either walk, as CPU time of this thread (the walk runs in one
  thread; ``analysis`` is wall time, since its polars queries run in other threads).

It prints medians and the ratio c / py of each, the events walked, the time per event,
whether both walks gave the same outputs and the same report, and the load average
before and after. The STD trace that ``benchmarks/rapid.py`` generates is a good input
(``benchmarks/_data/std-1000000.jsonl``); the whole commands against RAPID are
``benchmarks/rapid.py --pure-python``.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tracelens.analyze import analyze, load  # noqa: E402
from tracelens.analyze.hb import clocks, shared  # noqa: E402
from tracelens.report import render  # noqa: E402


def _loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("trace", type=Path)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    built = clocks.compiled
    if built is None:
        raise SystemExit("the compiled walk is not built (or TRACELENS_PURE_PYTHON is set)")
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpus, median of {args.repeat}")
    print(f"load average before: {_loadavg()}")
    t0 = time.perf_counter()
    trace = load(args.trace)
    print(f"load {time.perf_counter() - t0:.2f} s (once)")

    calls: list[tuple[Any, int, dict[str, Any]]] = []
    walk = clocks.vector_clocks

    def capture(sync: Any, n: int, **kw: Any) -> Any:
        calls.append((sync, n, kw))
        return walk(sync, n, **kw)

    clocks.vector_clocks = capture  # type: ignore[assignment]
    shared.vector_clocks = capture  # type: ignore[attr-defined]
    times: dict[str, dict[str, list[float]]] = {
        k: {"c": [], "py": []} for k in ("analysis", "render", "walks")
    }
    rendered: dict[str, str] = {}
    for r in range(args.repeat):
        for path, mod in (("c", built), ("py", None)):
            clocks.compiled = mod  # type: ignore[misc]
            t0 = time.perf_counter()
            report = analyze(trace)
            times["analysis"][path].append(time.perf_counter() - t0)
            if r == 0 and path == "c":
                render(report, "json")  # the renderer's first use imports it: not timed
            t0 = time.perf_counter()
            rendered[path] = render(report, "json")
            times["render"][path].append(time.perf_counter() - t0)
            if r == 0 and path == "c":
                clocks.vector_clocks = walk  # type: ignore[assignment]
                shared.vector_clocks = walk  # type: ignore[attr-defined]
    clocks.compiled = built  # type: ignore[misc]
    same = True
    with_gc = gc.isenabled()
    gc.disable()  # as analyze() walks
    for _ in range(args.repeat):
        for path, f in (("c", clocks.vector_clocks), ("py", clocks.vector_clocks_py)):
            total = 0.0
            for sync, n, kw in calls:
                c0 = time.thread_time()
                out = f(sync, n, **kw)
                total += time.thread_time() - c0
                if path == "py":
                    other = clocks.vector_clocks(sync, n, **kw)
                    same = same and (out.answers, out.segments) == (other.answers, other.segments)
                    if out.versions is not None and other.versions is not None:
                        same = same and out.versions.snapshots == other.versions.snapshots
                del out
            times["walks"][path].append(total)
    if with_gc:
        gc.enable()
    events = sum(sync.height for sync, _, _ in calls)
    print(f"{len(calls)} walks, {events:,} events walked in all")
    print(f"  {'':9s} {'c s':>8s} {'py s':>8s} {'c / py':>7s}")
    for k, v in times.items():
        cm, pm = statistics.median(v["c"]), statistics.median(v["py"])
        print(f"  {k:9s} {cm:8.3f} {pm:8.3f} {cm / pm:7.2f}")
    wc, wp = (statistics.median(times["walks"][p]) for p in ("c", "py"))
    print(f"  per walked event: c {1e9 * wc / events:.0f} ns, py {1e9 * wp / events:.0f} ns")
    print(f"same walk outputs: {same}; same JSON report: {rendered['c'] == rendered['py']}")
    print(f"load average after: {_loadavg()}")


if __name__ == "__main__":
    main()
