"""Test suites run plain and under ``tracelens run`` (instrumented): the same results?

    python benchmarks/instrumented_suites.py [--library more-itertools] [--skip-self]

1. This repository's own suite, ``pytest -q``, plain and as ``tracelens run -m pytest``
   (the project's modules instrumented; tracelens's own never are).
2. A real third-party pure-Python library's suite: its source distribution is
   downloaded from PyPI (``pip download --no-binary``) into a temporary directory and
   its tests run plain and under ``tracelens run -m pytest``, which instruments the
   library (it is the project there).

Prints, for each, the pytest summary line of both runs, their CPU times, the tests that
passed in one run and not in the other, and the load average. Exits 1 when the results
differ.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_RESULT = re.compile(r"^(PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS)\s+(\S+)", re.M)


def _pytest(
    cwd: Path, args: list[str], instrumented: bool, trace: Path
) -> tuple[str, dict[str, str], float]:
    """Run pytest; (its summary line, test id -> outcome, CPU seconds)."""
    base = ["-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider", *args]
    command = [sys.executable, *base]
    if instrumented:
        command = [sys.executable, "-m", "tracelens", "run", "-o", str(trace), *base]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    lines = [ln for ln in out.stdout.splitlines() if ln.strip()]
    summary = next((ln for ln in reversed(lines) if " in " in ln and "passed" in ln), lines[-1:])
    outcomes = {m.group(2): m.group(1) for m in _RESULT.finditer(out.stdout)}
    return str(summary), outcomes, cpu


def _compare(name: str, cwd: Path, args: list[str], tmp: Path) -> bool:
    plain = _pytest(cwd, args, False, tmp / f"{name}.jsonl")
    inst = _pytest(cwd, args, True, tmp / f"{name}.jsonl")
    print(f"\n{name}")
    print(f"  plain         {plain[2]:8.1f} s CPU   {plain[0]}")
    print(f"  instrumented  {inst[2]:8.1f} s CPU   {inst[0]}   ({inst[2] / plain[2]:.1f}x)")
    differ = sorted(t for t in set(plain[1]) | set(inst[1]) if plain[1].get(t) != inst[1].get(t))
    for t in differ:
        print(f"  differs: {t}: plain {plain[1].get(t)}, instrumented {inst[1].get(t)}")
    return not differ


def _library(name: str, tmp: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:",
         "-d", str(tmp), name],
        check=True,
    )  # fmt: skip
    (archive,) = tmp.glob("*.tar.gz")
    with tarfile.open(archive) as tar:
        tar.extractall(tmp, filter="data")
    (src,) = (p for p in tmp.iterdir() if p.is_dir())
    return src


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--library", default="more-itertools")
    p.add_argument("--skip-self", action="store_true")
    a = p.parse_args(argv)
    print(f"load average before: {os.getloadavg()}")
    same = True
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        if not a.skip_self:
            same &= _compare("tracelens's own suite", ROOT, [], tmp)
        lib = tmp / "lib"
        lib.mkdir()
        src = _library(a.library, lib)
        same &= _compare(f"{a.library}'s suite", src, ["tests"], tmp)
    print(f"\nload average after: {os.getloadavg()}")
    print("same results" if same else "results differ")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
