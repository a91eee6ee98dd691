"""Benchmark: ``analyze(load(trace))`` against polars alone reading the same file.

Generates synthetic traces (``tests/tracegen.py``: 16 threads, 2,000 variables, 64
locks, 46% synchronisation events, three variables updated without their lock, and
unlocked "config" reads of the counters, so that every variable has data races: a
worst case for the predictive analyses; ``--config-vars N`` sends those reads to N
read-only variables instead, a trace with few findings) into ``benchmarks/_data/``
(git-ignored), then measures, each in a fresh subprocess so that peak RSS belongs to
one measurement:

* ``bare``: ``pl.scan_ndjson(path).collect()``, polars reading the file, nothing else;
* ``windows``: ``analyze(load(path), only=["windows"])``, what ``tracelens report
  --only windows`` runs: loading, the window analysis, findings;
* ``report``: ``tracelens.analyze.analyze(tracelens.analyze.load(path))``: loading,
  every registered analysis (windows and the predictive ones), findings materialised
  as ``Finding`` objects.

The three alternate within each round, and the medians, peak RSS and both ratios to
``bare`` are printed side by side, with the load average before and after. The
targets it measures: the full report at most 3x the bare read at 1M events; 10M events
within 6 GB.

    python benchmarks/report.py                 # 1M events
    python benchmarks/report.py --large         # 1M and 10M events
    python benchmarks/report.py --config-vars 200
    python benchmarks/report.py --events 200000 --repeat 5
"""

from __future__ import annotations

import argparse
import json
import os
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

        report = analyze(load(path), only=["windows"] if kind == "windows" else None)
        n = report.summary["events"]
        lost = sorted((f.var, f.count) for f in report.findings if f.kind == "lost_update")
        detail = (
            f"{n} events, {len(report.findings)} findings {report.summary['findings_by_kind']};"
            f" lost_update {lost}"
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


def trace_for(n_events: int, *, regenerate: bool, config_vars: int = 0) -> Path:
    DATA.mkdir(parents=True, exist_ok=True)
    suffix = f"-config{config_vars}" if config_vars else ""
    path = DATA / f"trace-{n_events}{suffix}.jsonl"
    if regenerate or not path.exists():
        sys.path.insert(0, str(ROOT))
        from tests.tracegen import generate

        t0 = time.perf_counter()
        info = generate(
            path,
            n_events=n_events,
            threads=16,
            variables=2000,
            locks=64,
            config_vars=config_vars,
            seed=1,
        )
        took = time.perf_counter() - t0
        print(
            f"generated {path.name}: {info.events:,} events in {took:.1f}s, racy {info.racy_vars}"
        )
    return path


KINDS = ("bare", "windows", "report")


def bench(n_events: int, repeat: int, regenerate: bool, config_vars: int = 0) -> None:
    path = trace_for(n_events, regenerate=regenerate, config_vars=config_vars)
    size_mb = path.stat().st_size / 1e6
    print(f"\n{path.name}: {size_mb:,.0f} MB, {repeat} runs each (alternating)")
    print(f"  load average before: {_loadavg()}")
    results: dict[str, list[dict[str, float | str]]] = {k: [] for k in KINDS}
    for _ in range(repeat):
        for kind in results:
            results[kind].append(run_one(kind, path))
    med = {k: statistics.median(float(r["wall"]) for r in v) for k, v in results.items()}
    rss = {k: max(float(r["rss_mib"]) for r in v) for k, v in results.items()}
    print(f"  {'':<8}{'median':>8}  {'ratio':>6}  {'peak RSS':>10}  {'events/s':>9}  runs")
    for kind in results:
        walls = ", ".join(f"{float(r['wall']):.2f}" for r in results[kind])
        print(
            f"  {kind:<8}{med[kind]:7.2f}s  {med[kind] / med['bare']:5.2f}x"
            f"  {rss[kind]:6,.0f} MiB  {n_events / med[kind] / 1e6:7.2f}M  ({walls})"
        )
    print(f"  load average after:  {_loadavg()}")
    for kind in ("windows", "report"):
        print(f"  {kind} detail: {results[kind][-1]['detail']}")
    print(
        f"  ratios to bare: windows {med['windows'] / med['bare']:.2f}x,"
        f" report {med['report'] / med['bare']:.2f}x (wall, medians);"
        f" peak RSS windows {rss['windows'] / rss['bare']:.2f}x,"
        f" report {rss['report'] / rss['bare']:.2f}x"
    )


def _loadavg() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--events", type=int, default=1_000_000)
    p.add_argument("--large", action="store_true", help="also run 10M events")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--regenerate", action="store_true")
    p.add_argument(
        "--config-vars",
        type=int,
        default=0,
        help="unlocked reads go to this many read-only config variables instead of the"
        " counters (a trace without the thousands of data races; see tests/tracegen.py)",
    )
    p.add_argument("--measure", nargs=2, metavar=("KIND", "PATH"), help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.measure:
        measure(*a.measure)
        return
    import polars as pl

    print(f"polars {pl.__version__}, python {sys.version.split()[0]}")
    sizes = [a.events] + ([10_000_000] if a.large else [])
    for n in sizes:
        bench(n, a.repeat if n <= 1_000_000 else 1, a.regenerate, a.config_vars)


if __name__ == "__main__":
    main()
