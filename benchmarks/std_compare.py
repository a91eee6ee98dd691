"""tracelens against a plain per-event DJIT+ on the same STD trace.

    python benchmarks/std_compare.py [--events 1000000] [--repeat 3]

Generates a synthetic STD trace (RAPID's format: ``T1|w(V3)|345``) with 8 threads and 16
locks, converts it once with ``tracelens import-std``, then times side by side, medians
of ``--repeat`` runs:

  djit+      a plain Python DJIT+ (vector clocks per thread, lock and variable; every event
             checked) reading the STD file: the baseline the issue names (~1.8 s measured
             elsewhere at 1M events)
  read       polars alone reading the converted JSON-lines file
  tracelens  load + every analysis (windows and the four predictive ones): the full report
  tracelens (predictive)  load + the predictive analyses only (what DJIT+ computes, and more)

and checks that DJIT+ and tracelens's ``data_race`` flag the same set of racy variables.
RAPID itself (Java) is not available on this machine.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tracelens.analyze import analyze, load
from tracelens.importers.std import convert_std


def generate_std(
    path: Path, events: int, *, threads: int = 8, locks: int = 16, seed: int = 1
) -> None:
    """Write a synthetic STD trace: locked updates, some unlocked racy ones, forks and joins.

    Locations name statements as in a real program (one per operation on a variable, lock
    acquire and release), not a fresh random line per event, which would make every pair
    of events a distinct pair of code sites.
    """
    rnd = random.Random(seed)
    nvars = 2000
    lines = [f"T0|fork(T{t})|1" for t in range(1, threads + 1)]
    held: dict[int, str | None] = dict.fromkeys(range(1, threads + 1))
    owner: dict[str, int] = {}
    n = len(lines)
    while n < events - threads:
        t = rnd.randint(1, threads)
        lock = held[t]
        if lock is None:
            r = rnd.random()
            if r < 0.2:
                lk = f"L{rnd.randrange(locks)}"
                if lk not in owner:
                    owner[lk] = t
                    held[t] = lk
                    lines.append(f"T{t}|acq({lk})|{1000 + int(lk[1:])}")
                    n += 1
                    continue
            # an unlocked access: racy on a few variables, thread-local otherwise
            v = f"V{rnd.randrange(0, nvars, 97)}" if r < 0.25 else f"V{nvars + t}"
            op = "w" if rnd.random() < 0.5 else "r"
            lines.append(f"T{t}|{op}({v})|{2 * int(v[1:]) + (op == 'w')}")
        else:
            if rnd.random() < 0.3:
                lines.append(f"T{t}|rel({lock})|{2000 + int(lock[1:])}")
                held[t] = None
                del owner[lock]
            else:
                # variables protected by this lock
                v = f"V{int(lock[1:]) * 100 + rnd.randrange(50)}"
                op = "w" if rnd.random() < 0.5 else "r"
                lines.append(f"T{t}|{op}({v})|{2 * int(v[1:]) + (op == 'w')}")
        n += 1
    for t in range(1, threads + 1):
        if held[t] is not None:
            lines.append(f"T{t}|rel({held[t]})|1")
    lines += [f"T0|join(T{t})|2" for t in range(1, threads + 1)]
    path.write_text("\n".join(lines) + "\n")


_LINE = re.compile(r"^([^|]+)\|(\w+)\(([^)]*)\)\|")


def djit_plus(path: Path) -> set[str]:
    """Plain per-event DJIT+: the set of variables with a race (first checks only)."""
    C: dict[str, dict[str, int]] = {}  # thread clocks
    L: dict[str, dict[str, int]] = {}  # lock clocks
    R: dict[str, dict[str, int]] = {}  # read clocks per variable
    W: dict[str, dict[str, int]] = {}  # write clocks per variable
    racy: set[str] = set()

    def clock(t: str) -> dict[str, int]:
        c = C.get(t)
        if c is None:
            c = C[t] = {t: 1}
        return c

    def join_into(dst: dict[str, int], src: dict[str, int]) -> None:
        for k, v in src.items():
            if dst.get(k, 0) < v:
                dst[k] = v

    def leq(a: dict[str, int], b: dict[str, int]) -> bool:
        return all(v <= b.get(k, 0) for k, v in a.items())

    with open(path) as f:
        for line in f:
            m = _LINE.match(line)
            if m is None:
                continue
            t, op, arg = m.groups()
            c = clock(t)
            if op == "r":
                w = W.get(arg)
                if w is not None and arg not in racy and not leq(w, c):
                    racy.add(arg)
                R.setdefault(arg, {})[t] = c[t]
            elif op == "w":
                w, r = W.get(arg), R.get(arg)
                if arg not in racy and (
                    (w is not None and not leq(w, c)) or (r is not None and not leq(r, c))
                ):
                    racy.add(arg)
                W.setdefault(arg, {})[t] = c[t]
            elif op == "acq":
                lk = L.get(arg)
                if lk is not None:
                    join_into(c, lk)
            elif op == "rel":
                L[arg] = dict(c)
                c[t] += 1
            elif op == "fork":
                join_into(clock(arg), c)
                c[t] += 1
            elif op == "join":
                join_into(c, clock(arg))
    return racy


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        std = Path(tmp) / "trace.std"
        jsonl = Path(tmp) / "trace.jsonl"
        generate_std(std, args.events)
        convert_std(std, jsonl)
        times: dict[str, list[float]] = {
            "djit+": [],
            "read": [],
            "tracelens": [],
            "tracelens (predictive)": [],
        }
        found: dict[str, set[str]] = {}
        for _ in range(args.repeat):  # interleaved, so drift hits all alike
            t0 = time.perf_counter()
            found["djit+"] = djit_plus(std)
            times["djit+"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            pl.scan_ndjson(jsonl).collect()
            times["read"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            analyze(load(jsonl))
            times["tracelens"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            report = analyze(load(jsonl), only=["predictive"])
            times["tracelens (predictive)"].append(time.perf_counter() - t0)
            found["tracelens"] = {f.var for f in report.findings if f.kind == "data_race"}
        load_avg = os.getloadavg()[0]
        print(
            f"{args.events:,} STD events, 8 threads, 16 locks; median of {args.repeat}; "
            f"load average {load_avg:.2f}"
        )
        med = {k: statistics.median(v) for k, v in times.items()}
        for k, v in med.items():
            print(
                f"  {k:24s} {v:7.2f} s   {v / med['djit+']:.2f}x djit+   "
                f"{v / med['read']:.2f}x read"
            )
        same = found["djit+"] == found["tracelens"]
        print(
            f"racy variables: djit+ {len(found['djit+'])}, tracelens data_race "
            f"{len(found['tracelens'])}, same set: {same}"
        )


if __name__ == "__main__":
    main()
