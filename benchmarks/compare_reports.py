"""The reports of two versions of tracelens on the same traces, compared byte for byte.

    python benchmarks/compare_reports.py --before REF [TRACE ...] [--formats json,text]

Checks out ``REF`` into a temporary git worktree and runs ``tracelens report`` of
every trace in every format (and ``tracelens export``, as ``perfetto``) twice, each
in a fresh process: once with the tree at
``REF``, once with this working tree. Prints one line per trace and format (``same``
or where the two first differ) and exits 1 when any report differs. This is how a
refactoring shows that it changed no finding.

Without traces it takes the bundled samples (``sample_logs/*.jsonl.gz``), the STD
trace of the tests (imported with ``tracelens import-std`` by each tree) and the
benchmark traces already generated in ``benchmarks/_data/`` (``benchmarks/report.py``
makes them); ``--generate`` also makes a 300,000-event trace with 4,000 locks there
(``python -m tests.tracegen``), which takes the analyses' many-locks paths.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from compare_trees import checked_out  # benchmarks/ is on sys.path when run as a script

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "benchmarks" / "_data"
FORMATS = ("json", "text", "markdown", "sarif", "html", "perfetto")
#: Formats compared on big traces (the others render the same findings again, slowly).
BIG_FORMATS = ("json",)
BIG = 50_000_000  # bytes


def _report(tree: Path, trace: Path, fmt: str) -> bytes:
    env = {**os.environ, "PYTHONPATH": str(tree), "NO_COLOR": "1", "COLUMNS": "100"}
    command = (
        ["export", str(trace), "-o", "-"]
        if fmt == "perfetto"
        else ["report", "--format", fmt, str(trace)]
    )
    out = subprocess.run(
        [sys.executable, "-P", "-m", "tracelens", *command],
        capture_output=True,
        # the same working directory for both (paths in reports are relative to it);
        # -P keeps it off sys.path, so that each tree imports its own tracelens
        cwd=ROOT,
        env=env,
        check=False,
    )
    if out.returncode not in (0, 1):
        return b"exit %d: %s" % (out.returncode, out.stderr[-2000:])
    return out.stdout


def _imported(tree: Path, std: Path, out: Path) -> Path:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    subprocess.run(
        [sys.executable, "-P", "-m", "tracelens", "import-std", str(std), "-o", str(out)],
        check=True,
        capture_output=True,
        cwd=ROOT,
        env=env,
    )
    return out


def _first_difference(a: bytes, b: bytes) -> str:
    """Where two reports first differ, and on how many lines."""
    la, lb = a.splitlines(), b.splitlines()
    if len(la) != len(lb):
        return f"{len(la)} lines != {len(lb)} lines"
    differ = [i for i, (x, y) in enumerate(zip(la, lb, strict=True)) if x != y]
    i = differ[0]
    return f"{len(differ)} line(s), first line {i + 1}: {la[i][:100]!r} != {lb[i][:100]!r}"


def _generate() -> Path:
    path = DATA / "trace-300000-locks4000.jsonl"
    if not path.exists():
        DATA.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "tests.tracegen",
                str(path),
                "--events",
                "300000",
                "--variables",
                "4000",
                "--locks",
                "4000",
            ],
            check=True,
            cwd=ROOT,
        )
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("traces", nargs="*", type=Path)
    p.add_argument("--before", required=True, help="git revision to compare with")
    p.add_argument("--formats", default=",".join(FORMATS))
    p.add_argument("--generate", action="store_true", help="make the many-locks trace too")
    a = p.parse_args(argv)
    formats = [f for f in a.formats.split(",") if f]
    if a.generate:
        _generate()
    traces = [t.resolve() for t in a.traces] or [
        *sorted((ROOT / "sample_logs").glob("*.jsonl.gz")),
        *sorted(DATA.glob("*.jsonl")),
    ]
    differ = 0
    with checked_out(a.before) as old, tempfile.TemporaryDirectory() as tmp:
        pairs = [(t, t) for t in traces]
        if not a.traces:
            std = ROOT / "tests" / "data" / "std" / "races.std"
            pairs.append(
                (
                    _imported(old, std, Path(tmp) / "std-before.jsonl"),
                    _imported(ROOT, std, Path(tmp) / "std-after.jsonl"),
                )
            )
        for before, after in pairs:
            big = after.stat().st_size > BIG
            for fmt in formats:
                if big and fmt not in BIG_FORMATS:
                    continue
                x, y = _report(old, before, fmt), _report(ROOT, after, fmt)
                if x == y:
                    print(f"same     {after.name} {fmt} ({len(y):,} bytes)")
                else:
                    differ += 1
                    print(f"DIFFERS  {after.name} {fmt}: {_first_difference(x, y)}")
    print(f"{differ} reports differ" if differ else "every report is the same")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
