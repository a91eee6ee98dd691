"""Benchmark: ``analyze(load(trace))`` against polars alone reading the same file.

Generates synthetic traces (``tests/tracegen.py``: 16 threads, 2,000 variables, 64
locks, a few racy variables) into ``benchmarks/_data/`` (git-ignored), then measures,
each in a fresh subprocess so that peak RSS belongs to one measurement:

* ``bare``: ``pl.scan_ndjson(path).collect()``, polars reading the file, nothing else;
* ``report``: ``tracelens.analyze.analyze(tracelens.analyze.load(path))``: loading,
  every registered analysis, findings materialised as ``Finding`` objects.

and prints the median wall time, the peak RSS and the ratios. Targets (issue 4): the
report at most 2x the bare read at 1M events; 10M events within 6 GB.

    python benchmarks/report.py                 # 1M events
    python benchmarks/report.py --large         # 1M and 10M events
    python benchmarks/report.py --events 200000 --repeat 5
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "benchmarks" / "_data"


def measure(kind: str, path: str) -> None:
    """Run one measurement in this process and print it as JSON (subprocess side)."""
    t0 = time.perf_counter()
    if kind == "bare":
        import polars as pl

        n = pl.scan_ndjson(path).collect().height
        detail = f"{n} rows"
    else:
        from tracelens.analyze import analyze, load

        report = analyze(load(path))
        n = report.summary["events"]
        detail = f"{n} events, {len(report.findings)} findings " + str(
            {f.var: f.count for f in report.findings}
        )
    wall = time.perf_counter() - t0
    rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(json.dumps({"wall": wall, "rss_mib": rss_kib / 1024, "detail": detail}))


def run_one(kind: str, path: Path) -> dict[str, float | str]:
    out = subprocess.run(
        [sys.executable, __file__, "--measure", kind, str(path)],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def trace_for(n_events: int, *, regenerate: bool) -> Path:
    DATA.mkdir(parents=True, exist_ok=True)
    path = DATA / f"trace-{n_events}.jsonl"
    if regenerate or not path.exists():
        sys.path.insert(0, str(ROOT))
        from tests.tracegen import generate

        t0 = time.perf_counter()
        info = generate(path, n_events=n_events, threads=16, variables=2000, locks=64, seed=1)
        took = time.perf_counter() - t0
        print(
            f"generated {path.name}: {info.events:,} events in {took:.1f}s, racy {info.racy_vars}"
        )
    return path


def bench(n_events: int, repeat: int, regenerate: bool) -> None:
    path = trace_for(n_events, regenerate=regenerate)
    size_mb = path.stat().st_size / 1e6
    print(f"\n{path.name}: {size_mb:,.0f} MB, {repeat} runs each (alternating)")
    results: dict[str, list[dict[str, float | str]]] = {"bare": [], "report": []}
    for _ in range(repeat):
        for kind in results:
            results[kind].append(run_one(kind, path))
    med = {k: statistics.median(float(r["wall"]) for r in v) for k, v in results.items()}
    rss = {k: max(float(r["rss_mib"]) for r in v) for k, v in results.items()}
    for kind in results:
        walls = ", ".join(f"{float(r['wall']):.2f}" for r in results[kind])
        print(
            f"  {kind:<7} median {med[kind]:6.2f}s  (runs {walls})  peak RSS {rss[kind]:7,.0f} MiB"
            f"  {n_events / med[kind] / 1e6:5.2f}M events/s"
        )
    print(f"  report detail: {results['report'][-1]['detail']}")
    ratio = med["report"] / med["bare"]
    print(f"  ratio report/bare: wall {ratio:.2f}x, peak RSS {rss['report'] / rss['bare']:.2f}x")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--events", type=int, default=1_000_000)
    p.add_argument("--large", action="store_true", help="also run 10M events")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--regenerate", action="store_true")
    p.add_argument("--measure", nargs=2, metavar=("KIND", "PATH"), help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.measure:
        measure(*a.measure)
        return
    import polars as pl

    print(f"polars {pl.__version__}, python {sys.version.split()[0]}")
    sizes = [a.events] + ([10_000_000] if a.large else [])
    for n in sizes:
        bench(n, a.repeat if n <= 1_000_000 else 1, a.regenerate)


if __name__ == "__main__":
    main()
