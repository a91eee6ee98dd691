"""tracelens against RAPID (HBEpoch, its FastTrack-style engine) on the same STD traces.

    python benchmarks/rapid.py [--sizes 100000,1000000] [--repeat 3] [--rapid DIR] [--pure-python]

Generates STD traces (``benchmarks/std_compare.py``'s generator: 8 threads, 16 locks,
locked updates and a few unlocked racy variables) into ``benchmarks/_data/`` and times,
as whole commands in fresh processes, interleaved per round, medians of ``--repeat``:

  rapid      ``java -cp 'rapid.jar:lib/*:lib/jgrapht/*' HBEpoch -f std -p TRACE``
             (only with ``--rapid DIR``)
  import     ``tracelens import-std TRACE -o TRACE.jsonl``
  report     ``tracelens report TRACE.jsonl --format json -o OUT``, cold: the columnar
             cache beside the trace is removed before each run, so it parses the JSON
  report-py  (only with ``--pure-python``) the same with ``TRACELENS_PURE_PYTHON=1``:
             the pure-Python walks instead of the compiled ones (the happens-before
             walk, ``_clockwalk``), side by side with ``report``

Wall time, CPU time (user + system of the child) and peak RSS come from ``os.wait4``
of each child. It prints the ratios to issue 13's targets (report <= 0.5x HBEpoch's
wall time, import + report <= 1.0x) and checks that the racy variables agree: RAPID's
racy lines mapped to their variables (the generator gives each read and write of a
variable its own location), tracelens's ``data_race`` variables, and a plain DJIT+.

RAPID is built outside the repository and never committed::

    # the fetch tool: github:umangm/rapid, then
    git clone /work/.mirror/umangm+rapid/repo /work/rapid   # two jgrapht jars fail to
    cd /work/rapid && ant jar                                # check out; the build works
    python benchmarks/rapid.py --rapid /work/rapid
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATA = HERE / "_data"
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

from std_compare import djit_plus, generate_std  # noqa: E402


def _run(
    cmd: list[str], cwd: Path | None = None, env: dict[str, str] | None = None
) -> tuple[float, float, float, bytes]:
    """Wall s, CPU s and peak RSS MB of one command in a fresh process, and its stdout."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert p.stdout is not None
    out = p.stdout.read()
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode not in (0, 1):  # report exits 1 on findings
        raise SystemExit(f"{' '.join(cmd)} exited with {p.returncode}")
    return wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024, out


def _rapid_vars(std: Path, out: bytes) -> set[str]:
    """RAPID's racy lines (one location per racy event) mapped to their variables."""
    where: dict[str, str] = {}
    with open(std) as f:
        for line in f:
            _, ev, loc = line.rstrip("\n").split("|")
            if ev[:2] in ("r(", "w("):
                where[loc] = ev[2:-1]
    locs = {ln.strip() for ln in out.decode().splitlines() if ln.strip().isdigit()}
    return {where[loc] for loc in locs if loc in where}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000000", help="comma-separated event counts")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--rapid", type=Path, help="a RAPID checkout built with `ant jar`")
    ap.add_argument(
        "--pure-python",
        action="store_true",
        help="also time the report with TRACELENS_PURE_PYTHON=1 (report-py)",
    )
    args = ap.parse_args()
    sizes = [int(x) for x in args.sizes.split(",")]
    rapid = args.rapid.resolve() if args.rapid else None
    if rapid is not None and not (rapid / "rapid.jar").is_file():
        raise SystemExit(f"{rapid}/rapid.jar not found: build RAPID with `ant jar` first")
    tl = [sys.executable, "-m", "tracelens"]
    DATA.mkdir(exist_ok=True)
    load_before = os.getloadavg()
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} cpus, median of {args.repeat}, "
        f"load average {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}"
    )
    for n in sizes:
        std = DATA / f"std-{n}.std"
        if not std.exists():
            generate_std(std, n)
        jsonl = DATA / f"std-{n}.jsonl"
        out = DATA / f"std-{n}.report.json"
        runs: dict[str, list[tuple[float, float, float]]] = {"import": [], "report": []}
        if rapid is not None:
            runs["rapid"] = []
        if args.pure_python:
            runs["report-py"] = []
        report_cmd = [*tl, "report", str(jsonl), "--format", "json", "-o", str(out)]
        pure_env = {**os.environ, "TRACELENS_PURE_PYTHON": "1"}
        rapid_out = b""
        for _ in range(args.repeat):
            if rapid is not None:
                cp = "rapid.jar:lib/*:lib/jgrapht/*"
                *m, rapid_out = _run(
                    ["java", "-cp", cp, "HBEpoch", "-f", "std", "-p", str(std)], rapid
                )
                runs["rapid"].append(tuple(m))  # type: ignore[arg-type]
            *m, _ = _run([*tl, "import-std", str(std), "-o", str(jsonl)])
            runs["import"].append(tuple(m))  # type: ignore[arg-type]
            shutil.rmtree(DATA / ".tracelens-cache", ignore_errors=True)  # cold: parse JSON
            *m, _ = _run(report_cmd)
            runs["report"].append(tuple(m))  # type: ignore[arg-type]
            if args.pure_python:
                shutil.rmtree(DATA / ".tracelens-cache", ignore_errors=True)
                *m, _ = _run(report_cmd, env=pure_env)
                runs["report-py"].append(tuple(m))  # type: ignore[arg-type]
        med = {k: [statistics.median(x[i] for x in v) for i in range(3)] for k, v in runs.items()}
        print(f"\n{n:,} STD events (8 threads, 16 locks)")
        print(f"  {'':9s} {'wall s':>8s} {'cpu s':>8s} {'rss MB':>8s}")
        for k, (w, c, r) in med.items():
            print(f"  {k:9s} {w:8.2f} {c:8.2f} {r:8.0f}")
        both_w = med["import"][0] + med["report"][0]
        both_c = med["import"][1] + med["report"][1]
        print(f"  import + report {both_w:.2f} s wall, {both_c:.2f} s cpu")
        if args.pure_python:
            pw, pc = med["report-py"][0], med["report-py"][1]
            print(
                f"  report / report-py:        {med['report'][0] / pw:.2f}x wall, "
                f"{med['report'][1] / pc:.2f}x cpu"
            )
        if rapid is not None:
            rw, rc = med["rapid"][0], med["rapid"][1]
            print(
                f"  report / HBEpoch:          {med['report'][0] / rw:.2f}x wall "
                f"(target <= 0.5), {med['report'][1] / rc:.2f}x cpu"
            )
            print(
                f"  import + report / HBEpoch: {both_w / rw:.2f}x wall "
                f"(target <= 1.0), {both_c / rc:.2f}x cpu"
            )
        report = json.loads(out.read_text())
        found = {f["var"] for f in report["findings"] if f["kind"] == "data_race"}
        djit = djit_plus(std)
        line = f"  racy variables: tracelens {len(found)}, djit+ {len(djit)}"
        same = found == djit
        if rapid is not None:
            rv = _rapid_vars(std, rapid_out)
            line += f", rapid {len(rv)}"
            same = same and rv == djit
        print(f"{line}; same set: {same}")
    load_after = os.getloadavg()
    print(f"\nload average after {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}")


if __name__ == "__main__":
    main()
