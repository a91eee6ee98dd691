"""Start-up costs, as whole commands in fresh processes: the recorder and the CLI.

    python benchmarks/startup.py [--repeat 11]

Side by side, interleaved per round, medians of ``--repeat`` runs, wall and CPU time
(user + system of the child, from ``os.wait4``):

  python -c pass                        the interpreter alone (subtracted below)
  import tracelens
  import tracelens; configure(path)     target: at most 50 ms more than ``pass``
  python -c "import polars"             the floor of any command that analyses
  tracelens --help
  tracelens report T (text, json)       T: the first 200 events of the bundled
                                        article_racy sample; target: at most 0.3 s wall

Run it on a quiet machine: the load average is printed before and after.
"""

from __future__ import annotations

import argparse
import gzip
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _once(cmd: list[str]) -> tuple[float, float]:
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, _status, ru = os.wait4(p.pid, 0)
    return time.perf_counter() - t0, ru.ru_utime + ru.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=11)
    args = ap.parse_args()
    py = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        trace = Path(tmp) / "t200.jsonl"
        with gzip.open(ROOT / "sample_logs" / "article_racy.jsonl.gz", "rt") as f:
            trace.write_text("".join(line for _, line in zip(range(200), f, strict=False)))
        out = str(Path(tmp) / "x.jsonl")
        tl = [py, "-m", "tracelens"]
        variants = {
            "python -c pass": [py, "-c", "pass"],
            "import tracelens": [py, "-c", "import tracelens"],
            "import + configure()": [
                py,
                "-c",
                f"import tracelens; tracelens.configure({out!r})",
            ],
            "import polars": [py, "-c", "import polars"],
            "tracelens --help": [*tl, "--help"],
            "report 200 events (text)": [*tl, "report", str(trace), "--fail-on", "never"],
            "report 200 events (json)": [
                *tl,
                "report",
                str(trace),
                "--format",
                "json",
                "--fail-on",
                "never",
            ],
        }
        load = os.getloadavg()
        runs: dict[str, list[tuple[float, float]]] = {k: [] for k in variants}
        for _ in range(args.repeat):
            for name, cmd in variants.items():
                runs[name].append(_once(cmd))
    med = {
        k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v))
        for k, v in runs.items()
    }
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} cpus, median of {args.repeat}, "
        f"load average {load[0]:.2f} before, {os.getloadavg()[0]:.2f} after"
    )
    base_w, base_c = med["python -c pass"]
    print(f"  {'':28s} {'wall ms':>8s} {'cpu ms':>8s} {'- pass wall':>12s} {'- pass cpu':>11s}")
    for k, (w, c) in med.items():
        dw, dc = (w - base_w) * 1e3, (c - base_c) * 1e3
        print(f"  {k:28s} {w * 1e3:8.0f} {c * 1e3:8.0f} {dw:12.0f} {dc:11.0f}")
    cw, cc = med["import + configure()"]
    dw, dc = (cw - base_w) * 1e3, (cc - base_c) * 1e3
    print(f"import + configure(): {dw:.0f} ms wall, {dc:.0f} ms cpu beyond the interpreter")
    print("  (target <= 50 ms)")
    rw = med["report 200 events (text)"][0]
    print(f"report on 200 events: {rw:.2f} s wall (target <= 0.3 s)")


if __name__ == "__main__":
    main()
