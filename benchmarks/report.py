"""Benchmark: whole ``tracelens report`` commands against polars alone reading the file.

Generates synthetic traces (``tests/tracegen.py``: 16 threads, 2,000 variables, 64
locks, 46% synchronisation events, three variables updated without their lock, and
unlocked "config" reads of the counters, so that every variable has data races: the
adversarial trace, thousands of findings; ``--config-vars N`` sends those reads to N
read-only variables instead, the realistic trace with few findings) into
``benchmarks/_data/`` (git-ignored, reused), then runs, each as a fresh process whose
own CPU time and peak RSS come from ``os.wait4``:

* ``bare``: ``python -c 'pl.scan_ndjson(path).collect()'``, polars reading the file;
* ``cold``: ``tracelens report PATH --format json -o /dev/null`` with no cache entry
  (the cache is removed first): the NDJSON parsed, the cache entry written;
* ``warm``: the same command again, the events read from the cache entry;
* ``nocache``: the same command with ``--no-cache``.

The variants alternate within each round. It prints the medians (wall and CPU), CPU
per event, the ratios to ``bare`` against the targets (issue 13: report <= 2.0x the
bare read on the realistic trace at 1M events, <= 2.5x on the adversarial one; CPU per
event at 10M within 1.15x of 1M; peak RSS <= 2x the bare read's), and the load average
before and after.

    python benchmarks/report.py                     # 1M events, adversarial
    python benchmarks/report.py --config-vars 200   # 1M events, realistic
    python benchmarks/report.py --large --config-vars 200   # 1M, 3M and 10M
    python benchmarks/report.py --events 200000 --repeat 5
    python benchmarks/report.py --large --config-vars 200 --kinds bare,nocache

``--kinds`` picks the variants (a 10M-event report takes minutes each). With more than
one size it ends with a table of the sizes side by side: CPU per event of each variant
and its ratio to the smallest size (target <= 1.15x at 10M), and each variant's peak
RSS as a multiple of the bare read's at that size (target <= 2x).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "benchmarks" / "_data"


BARE = "import polars as pl, sys; pl.scan_ndjson(sys.argv[1]).collect()"
TRACELENS = str(Path(sys.executable).with_name("tracelens"))


def command(kind: str, path: Path) -> list[str]:
    """The command line that variant ``kind`` runs on ``path``."""
    if kind == "bare":
        return [sys.executable, "-c", BARE, str(path)]
    cmd = [TRACELENS, "report", str(path), "--format", "json", "-o", os.devnull]
    cmd += ["--fail-on", "never"]
    return cmd + (["--no-cache"] if kind == "nocache" else [])


def run_one(kind: str, path: Path) -> dict[str, float]:
    """Run one variant in a fresh process: wall, CPU (user + system) and peak RSS."""
    if kind == "cold":
        shutil.rmtree(path.parent / ".tracelens-cache", ignore_errors=True)
    env = {k: v for k, v in os.environ.items() if k != "TRACELENS_NO_CACHE"}
    t0 = time.perf_counter()
    proc = subprocess.Popen(command(kind, path), cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{kind} failed with exit code {proc.returncode}")
    cpu = usage.ru_utime + usage.ru_stime
    return {"wall": wall, "cpu": cpu, "rss_mib": usage.ru_maxrss / 1024}


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


KINDS = ("bare", "cold", "warm", "nocache")


def bench(
    n_events: int,
    repeat: int,
    regenerate: bool,
    config_vars: int = 0,
    kinds: tuple[str, ...] = KINDS,
) -> dict[str, float]:
    """Measure one trace; return the medians and peaks (for the size-to-size ratios)."""
    path = trace_for(n_events, regenerate=regenerate, config_vars=config_vars)
    size_mb = path.stat().st_size / 1e6
    print(f"\n{path.name}: {size_mb:,.0f} MB, {repeat} runs each (alternating)")
    print(f"  load average before: {_loadavg()}")
    results: dict[str, list[dict[str, float]]] = {k: [] for k in kinds}
    for _ in range(repeat):
        for kind in kinds:  # cold before warm: warm reads what cold wrote
            results[kind].append(run_one(kind, path))
    med = {k: statistics.median(r["wall"] for r in v) for k, v in results.items()}
    cpu = {k: statistics.median(r["cpu"] for r in v) for k, v in results.items()}
    rss = {k: max(r["rss_mib"] for r in v) for k, v in results.items()}
    print(
        f"  {'':<8}{'wall':>7} {'ratio':>6} {'CPU':>7} {'ratio':>6} {'CPU/event':>10}"
        f" {'peak RSS':>10} {'ratio':>6}  wall runs"
    )
    for kind in kinds:
        walls = ", ".join(f"{r['wall']:.2f}" for r in results[kind])
        print(
            f"  {kind:<8}{med[kind]:6.2f}s {med[kind] / med['bare']:5.2f}x"
            f" {cpu[kind]:6.2f}s {cpu[kind] / cpu['bare']:5.2f}x"
            f" {cpu[kind] / n_events * 1e6:7.2f} us {rss[kind]:6,.0f} MiB"
            f" {rss[kind] / rss['bare']:5.2f}x  ({walls})"
        )
    print(f"  load average after:  {_loadavg()}")
    limit = 2.5 if config_vars == 0 else 2.0
    for kind in (k for k in ("cold", "warm", "nocache") if k in kinds):
        print(
            f"  {kind}: wall {med[kind] / med['bare']:.2f}x, CPU {cpu[kind] / cpu['bare']:.2f}x"
            f" the bare read (target <= {limit}x at 1M);"
            f" peak RSS {rss[kind] / rss['bare']:.2f}x (target <= 2x)"
        )
    return {f"{k}_cpu": cpu[k] for k in kinds} | {f"{k}_rss": rss[k] for k in kinds}


def _loadavg() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--events", type=int, default=1_000_000)
    p.add_argument("--large", action="store_true", help="also run 3M and 10M events")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--regenerate", action="store_true")
    p.add_argument(
        "--config-vars",
        type=int,
        default=0,
        help="unlocked reads go to this many read-only config variables instead of the"
        " counters (a trace without the thousands of data races; see tests/tracegen.py)",
    )
    p.add_argument(
        "--kinds",
        default=",".join(KINDS),
        help="comma-separated variants to run, from " + ", ".join(KINDS) + " (bare is always run)",
    )
    a = p.parse_args(argv)
    kinds = tuple(k for k in KINDS if k == "bare" or k in a.kinds.split(","))
    import polars as pl

    print(f"polars {pl.__version__}, python {sys.version.split()[0]}")
    sizes = [a.events] + ([3_000_000, 10_000_000] if a.large else [])
    per_event: dict[int, dict[str, float]] = {}
    for n in sizes:
        per_event[n] = bench(
            n, a.repeat if n <= 1_000_000 else 1, a.regenerate, a.config_vars, kinds
        )
    if len(sizes) > 1:
        scaling(per_event, kinds)
    print(f"load average at the end: {_loadavg()}")


def scaling(per_event: dict[int, dict[str, float]], kinds: tuple[str, ...]) -> None:
    """The sizes side by side: CPU per event (ratio to the smallest size), RSS / bare."""
    small = min(per_event)
    print(f"\nscaling (CPU per event: ratio to {small:,} events, target <= 1.15x;")
    print(" peak RSS: ratio to the bare read at the same size, target <= 2x)")
    print(f"  {'events':>11} " + " ".join(f"{k:>22}" for k in kinds))
    for n, got in sorted(per_event.items()):
        cells = []
        for k in kinds:
            us = got[f"{k}_cpu"] / n * 1e6
            ratio = us / (per_event[small][f"{k}_cpu"] / small * 1e6)
            rss = got[f"{k}_rss"] / got["bare_rss"]
            cells.append(f"{us:5.2f}us {ratio:4.2f}x {rss:4.2f}xRSS")
        print(f"  {n:>11,} " + " ".join(f"{x:>22}" for x in cells))


if __name__ == "__main__":
    main()
