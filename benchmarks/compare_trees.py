"""The full report with two versions of tracelens, side by side, against the bare read.

    python benchmarks/compare_trees.py TRACE [--before REF] [--repeat 3] [--only-load]

Checks out ``REF`` (default ``HEAD~1``) into a temporary git worktree, then alternates,
each in its own process so that peak RSS belongs to one measurement: polars alone
reading the file (``pl.scan_ndjson(path).collect()``), ``analyze(load(path))`` with the
tree at ``REF``, and the same with this working tree. Prints medians, ratios to the
bare read (wall and CPU: user + system of all the process's threads), peak RSS and the
load average before and after. ``--only-load`` times ``load(path)`` alone (the loader's
changes, without the analyses' noise). This is how a round's
before/after numbers in ``docs/`` are measured: on a shared machine, only numbers from
one run are comparable.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_MEASURE = r"""
import json, resource, sys, time
t0 = time.perf_counter()
if sys.argv[1] == "bare":
    import polars as pl
    pl.scan_ndjson(sys.argv[2]).collect()
    detail = ""
elif sys.argv[1] == "load":
    from tracelens.analyze import load
    detail = f"{load(sys.argv[2]).stats.events} events"
else:
    from tracelens.analyze import analyze, load
    report = analyze(load(sys.argv[2]))
    detail = f"{len(report.findings)} findings"
wall = time.perf_counter() - t0
usage = resource.getrusage(resource.RUSAGE_SELF)
rss = usage.ru_maxrss / 1024
cpu = usage.ru_utime + usage.ru_stime
print(json.dumps({"wall": wall, "cpu": cpu, "rss": rss, "detail": detail}))
"""


def _run(kind: str, tree: Path, trace: Path) -> dict[str, object]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run(
        [sys.executable, "-c", _MEASURE, kind, str(trace)],
        capture_output=True,
        text=True,
        cwd=tree,
        env=env,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


@contextlib.contextmanager
def checked_out(rev: str) -> Iterator[Path]:
    """A temporary git worktree of this repository at ``rev`` (removed afterwards)."""
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "before"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(tree), rev],
            check=True,
        )
        try:
            yield tree
        finally:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=False
            )


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("trace", type=Path)
    p.add_argument("--before", default="HEAD~1", help="git revision to compare with")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--only-load", action="store_true", help="time load(path) alone")
    a = p.parse_args(argv)
    measured = "load" if a.only_load else "report"
    trace = a.trace.resolve()
    with checked_out(a.before) as old:
        runs: dict[str, list[dict[str, object]]] = {"bare": [], "before": [], "after": []}
        print(f"{trace.name}, {a.repeat} rounds; load average before {os.getloadavg()}")
        for _ in range(a.repeat):
            runs["bare"].append(_run("bare", ROOT, trace))
            runs["before"].append(_run(measured, old, trace))
            runs["after"].append(_run(measured, ROOT, trace))
        print(f"load average after {os.getloadavg()}")
    bare = statistics.median(float(r["wall"]) for r in runs["bare"])  # type: ignore[arg-type]
    bare_cpu = statistics.median(float(r["cpu"]) for r in runs["bare"])  # type: ignore[arg-type]
    for name, rs in runs.items():
        walls = [float(r["wall"]) for r in rs]  # type: ignore[arg-type]
        cpus = [float(r["cpu"]) for r in rs]  # type: ignore[arg-type]
        med, med_cpu = statistics.median(walls), statistics.median(cpus)
        peak = max(float(r["rss"]) for r in rs)  # type: ignore[arg-type]
        label = f"{name} ({a.before})" if name == "before" else name
        print(
            f"  {label:20s} {med:7.2f} s  {med / bare:5.2f}x bare  CPU {med_cpu:6.2f} s"
            f"  {med_cpu / bare_cpu:5.2f}x bare  peak {peak:7,.0f} MiB"
            f"  (CPU {', '.join(f'{x:.2f}' for x in cpus)})  {rs[-1]['detail']}"
        )


if __name__ == "__main__":
    main()
