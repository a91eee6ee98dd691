"""Benchmark: clocks that scale, whole ``tracelens report`` commands in fresh processes.

Three pairs of traces of the same shape, each pair differing in one dimension only:

* ``threads``: a thread per request (``tests/tracegen.py --live 8``: 8 workers alive
  at once, the main thread joining each and starting the next), ``--events`` events
  (1M by default) made by 10 threads vs by 10,000 threads;
* ``depth``: one thread takes ``d`` locks nested, another takes them in reverse
  order, repeated so that both traces have the same number of events: depth 10 vs
  depth 100;
* ``held``: the same with 1,000 locks held at once vs 10 nested locks;
* ``rings``: 4 units, each holding a lock of its own, close 250 cycles of 4 locks vs 2
  (``ring_trace``), and ``rotated``: 3 units nest 1,000 locks in rotated orders vs 10
  (``rotated_trace``: a dense lock-order graph, the search for cycles of 3+ locks).

Each trace is reported with ``tracelens report --no-cache --format json`` ``--repeat``
times (median) in a fresh process; wall time, CPU (user + system of the child, from
``os.wait4``) and peak RSS are printed with the ratios of the pair, and the load
average before and after (the machine is shared: CPU time is the steadier measure).
It also checks, on a small thread-per-request trace (``--check-events``, 40 threads),
that the report's racy variables are those of the plain reference (``hb_oracle``), and
that the lock cycles of a 3-ring trace are the oracle's::

    python benchmarks/scale.py                      # 1M events, 3 runs each
    python benchmarks/scale.py --events 100000 --repeat 1

Measured on this branch (``python benchmarks/scale.py --repeat 3``: 1M events,
40,000-event nesting traces, median of 3; 2 cores shared with other jobs, load
average 9-11 before and 5-8 after, so wall times are noisy and CPU is the measure):

=======================  ======  =====  ========
trace                    wall s  CPU s  peak RSS
=======================  ======  =====  ========
1M events, 10 threads      6.70   6.53   1097 MB
1M events, 10,000 thr.    16.06   9.97    971 MB
depth 10 (x1000 rounds)    1.67   0.98    406 MB
depth 100 (x100 rounds)    1.42   1.26    406 MB
1,000 held (x10 rounds)   22.84  18.43   1865 MB
=======================  ======  =====  ========

Ratios: 10,000 threads vs 10: CPU x1.53, RSS x0.88 (wall x2.40 under that load);
depth 100 vs 10: CPU x1.28, RSS x1.00; 1,000 locks held vs 10: CPU x18.8, RSS
x4.6 (not within 2x: a unit holding d locks makes d^2/2 lock-order edges, one per
pair of held and acquired lock). The racy variables of a 4,007-event, 40-thread
trace are the oracle's (8 variables). Before this branch: 1M events with 10,000
threads died with MemoryError (100k events: 30.5 s, 4.1 GB; now 2.0 s, 0.23 GB), and
one round of depth 60 took 51 s (now 2.0 s).

After the merge with main's lock-set features (``--repeat 1``, load 1-3.4): 10,000
threads vs 10: CPU x2.40 (19.6 s vs 8.2 s), RSS x1.40; the same traces reported by
r17-clocks alone: CPU x1.07, by main before the merge: x28.9 (175 s, 23 GB). The
difference is the second hybrid walk (publications through a lock: on the 10,000-thread
trace about 190k release -> acquire edges, each a trie join over clocks that know
thousands of units), about 9 s of CPU; depth 100 vs 10: CPU x1.42; 1,000 held vs 10:
x22.4. The racy variables of the 40-thread trace are the oracle's.

Branch r17-scale (``--repeat 1``, load average 16.8 before and 9.8 after: CPU is the
measure): one nested-acquire row per (unit, lock, held set) and two-lock cycles as a
polars join; a receive of a one-send object whose epoch the receiver knows skipped.

=======================  ======  =====  ========
trace                    wall s  CPU s  peak RSS
=======================  ======  =====  ========
1M events, 10 threads     12.47   6.88    940 MB
1M events, 10,000 thr.    18.65  10.93   1257 MB
depth 10 (x1000 rounds)    1.02   0.74    408 MB
depth 100 (x100 rounds)    1.11   0.78    408 MB
1,000 held (x10 rounds)    4.92   2.32    571 MB
=======================  ======  =====  ========

Ratios: 10,000 threads vs 10: CPU x1.59, RSS x1.34 (wall x1.50); depth 100 vs 10:
CPU x1.06; 1,000 held vs 10: CPU x3.12, RSS x1.40 (was x22.4: not yet within 2x; of
its analysis, about 1 s is the disjointness check of the 500k candidate pairs of held
sets and 0.9 s the finding model's Python lists of the held locks its events show,
52,000 names in the JSON report). The racy variables are the oracle's.

Branch r17-held (``--repeat 1``, load average 16 before and 31 after: CPU is the
measure; the peak RSS of the small traces is that of the forked benchmark process):
two-lock pairs on packed keys, held-set disjointness in polars, members without a sort,
the findings' events as one flat frame, at most 20 held locks an event; cycles of 3+
locks over links between nested acquires.

=============================  ======  =====  ========
trace                          wall s  CPU s  peak RSS
=============================  ======  =====  ========
1M events, 10 threads           33.47   9.12    932 MB
1M events, 10,000 thr.         104.74  12.72   1244 MB
depth 10 (x1000 rounds)          7.98   0.57    411 MB
depth 100 (x100 rounds)          6.03   0.56    411 MB
1,000 held (x10 rounds)         11.55   1.09    411 MB
2 rings of 4 locks               7.04   0.56    411 MB
250 rings of 4 locks             7.48   0.65    411 MB
3 units x 10 rotated             6.46   0.51    411 MB
3 units x 1,000 rotated         20.01   1.99    505 MB
=============================  ======  =====  ========

Ratios (CPU): 10,000 threads vs 10: x1.40; depth 100 vs 10: x0.97; 1,000 locks held
vs 10: x1.90 (was x3.12: within 2x); 250 4-lock cycles vs 2: x1.16; 3 units nesting
1,000 locks in rotated orders vs 10: x3.94 (2.0 s; before this branch the search for
cycles of 3+ locks walked every path of the lock-pair graph: 240 locks took 13.9 s,
1,000 would take many minutes). The racy variables and the rings' cycles are the
oracle's.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.analyze.hb import hb_oracle  # noqa: E402
from tests.tracegen import generate  # noqa: E402
from tests.traces import event, write_trace  # noqa: E402
from tracelens import schema as s  # noqa: E402


def _emitter(file: str) -> tuple[list[dict[str, object]], Callable[..., None]]:
    """The events of one synthetic trace, and the function that appends one: process 1,
    sequence numbers from 0, a line of ``file`` per event."""
    evs: list[dict[str, object]] = []

    def ev(unit: str, op: str, **kw: object) -> None:
        seq = len(evs)
        evs.append(
            event(
                op,
                seq=seq,
                ts=1000 + seq,
                pid=1,
                unit=unit,
                **kw,
                file=file,
                line=seq % 50 + 1,
                func="f",
            )
        )

    return evs, ev


def nested_trace(path: Path, depth: int, rounds: int) -> int:
    """``rounds`` times: t1 takes ``depth`` locks in order, t2 in reverse; events written."""
    evs, ev = _emitter("app.py")

    locks = [f"Lock@app.py:{i}#{i + 1}" for i in range(depth)]
    ev("t0", s.Op.FORK, obj="t1", kind=s.Kind.THREAD)
    ev("t0", s.Op.FORK, obj="t2", kind=s.Kind.THREAD)
    for _ in range(rounds):
        for unit, order in (("t1", locks), ("t2", locks[::-1])):
            for lk in order:
                ev(unit, s.Op.ACQUIRE, obj=lk, kind=s.Kind.LOCK)
            for lk in order[::-1]:
                ev(unit, s.Op.RELEASE, obj=lk, kind=s.Kind.LOCK)
    ev("t0", s.Op.JOIN, obj="t1", kind=s.Kind.THREAD)
    ev("t0", s.Op.JOIN, obj="t2", kind=s.Kind.THREAD)
    write_trace(path, evs)
    return len(evs)


def rotated_trace(path: Path, depth: int, rounds: int) -> int:
    """``rounds`` times: 3 units take ``depth`` locks nested, unit ``k`` starting a third
    of the way further along than unit ``k - 1`` and the second unit in reverse order: a
    dense lock-order graph, every lock before and after every other, that the search
    for cycles of 3 locks or more has to walk (events written)."""
    evs, ev = _emitter("app.py")

    locks = [f"Lock@app.py:{i}#{i + 1}" for i in range(depth)]
    units = ["t1", "t2", "t3"]
    for u in units:
        ev("t0", s.Op.FORK, obj=u, kind=s.Kind.THREAD)
    for _ in range(rounds):
        for k, u in enumerate(units):
            shift = k * depth // len(units)
            order = locks[shift:] + locks[:shift]
            if k % 2:
                order = order[::-1]
            for lk in order:
                ev(u, s.Op.ACQUIRE, obj=lk, kind=s.Kind.LOCK)
            for lk in order[::-1]:
                ev(u, s.Op.RELEASE, obj=lk, kind=s.Kind.LOCK)
    for u in units:
        ev("t0", s.Op.JOIN, obj=u, kind=s.Kind.THREAD)
    write_trace(path, evs)
    return len(evs)


def ring_trace(path: Path, rings: int, rounds: int) -> int:
    """``rounds`` times: 4 units, each holding a lock of its own, take two locks of every
    ring (unit ``i`` lock ``i`` then lock ``i + 1`` of the ring's 4): ``rings`` cycles of 4
    locks (each hop another unit, no gate lock in common), ``4 * rings + 4`` locks."""
    evs, ev = _emitter("ring.py")

    units = [f"t{i + 1}" for i in range(4)]
    for u in units:
        ev("t0", s.Op.FORK, obj=u, kind=s.Kind.THREAD)
    for _ in range(rounds):
        for i, u in enumerate(units):
            own = f"Own@ring.py:{i}#{i + 1}"
            ev(u, s.Op.ACQUIRE, obj=own, kind=s.Kind.LOCK)
            for r in range(rings):
                pair = [f"Ring{r}@ring.py:{k % 4}#{r * 4 + k % 4 + 9}" for k in (i, i + 1)]
                for lk in pair:
                    ev(u, s.Op.ACQUIRE, obj=lk, kind=s.Kind.LOCK)
                for lk in pair[::-1]:
                    ev(u, s.Op.RELEASE, obj=lk, kind=s.Kind.LOCK)
            ev(u, s.Op.RELEASE, obj=own, kind=s.Kind.LOCK)
    for u in units:
        ev("t0", s.Op.JOIN, obj=u, kind=s.Kind.THREAD)
    write_trace(path, evs)
    return len(evs)


def report(path: Path) -> tuple[float, float, float, bytes]:
    """One ``tracelens report --no-cache --format json``: wall s, CPU s, peak RSS MB, stdout."""
    cmd = [sys.executable, "-m", "tracelens", "report", "--no-cache", "--format", "json", str(path)]
    with tempfile.TemporaryFile() as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.DEVNULL, cwd=ROOT)
        _, status, ru = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode not in (0, 1):  # 1: findings
            raise SystemExit(f"{path.name}: exit {proc.returncode}")
        out.seek(0)
        doc = out.read()
    return wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024, doc


def measure(path: Path, repeat: int) -> tuple[float, float, float]:
    runs = [report(path)[:3] for _ in range(repeat)]
    return tuple(statistics.median(r[i] for r in runs) for i in range(3))  # type: ignore[return-value]


def racy_vars(doc: bytes) -> set[str]:
    # (a finding of several variables lists them in ``vars``: at most 100, enough here)
    found = [f for f in orjson.loads(doc)["findings"] if f["kind"] == "data_race"]
    return {v for f in found for v in f.get("vars", [f["var"]])}


def oracle_check(tmp: Path, n_events: int) -> bool:
    """The report's racy variables on a small thread-per-request trace are the oracle's."""
    path = tmp / "check.jsonl"
    generate(path, n_events=n_events, threads=40, live=8, seed=1)
    lines = [orjson.loads(x) for x in path.read_bytes().splitlines()]
    lines.sort(key=lambda d: d[s.SEQ])
    rows = [
        {
            "unit": d[s.UNIT],
            "op": d[s.OP],
            "obj": d.get(s.OBJ),
            "var": d.get(s.VAR),
            "pid": d[s.PID],
            "msg": d.get(s.MSG),
            "kind": d.get(s.KIND),
        }
        for d in lines
        if d[s.OP] != s.Op.META
    ]
    want = set(hb_oracle.races(rows))
    got = racy_vars(report(path)[3])
    print(
        f"oracle check ({len(rows)} events, 40 threads): "
        f"report {sorted(got)}, oracle {sorted(want)}"
    )
    return got == want


def cycles_check(tmp: Path) -> bool:
    """The report's lock cycles on a small ring trace (3 rings) are the oracle's."""
    path = tmp / "rings-check.jsonl"
    ring_trace(path, rings=3, rounds=2)
    lines = sorted(
        (orjson.loads(x) for x in path.read_bytes().splitlines()), key=lambda d: d[s.SEQ]
    )
    rows = [
        {"unit": d[s.UNIT], "op": d[s.OP], "obj": d.get(s.OBJ)}
        for d in lines
        if d[s.OP] in (s.Op.ACQUIRE, s.Op.RELEASE)
    ]
    want = sorted(var for var, _, _ in hb_oracle.lock_order_cycles(rows))
    found = orjson.loads(report(path)[3])["findings"]
    got = sorted(v for f in found if f["kind"] == "lock_order_inversion" for v in f["vars"])
    print(f"cycles check (3 rings of 4 locks): report {len(got)} cycles, oracle {len(want)}")
    return got == want and len(want) == 3


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--events", type=int, default=1_000_000)
    p.add_argument("--lock-events", type=int, default=40_000, help="events of the nesting traces")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--check-events", type=int, default=4000)
    a = p.parse_args()
    print(f"load average before {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        ok = oracle_check(tmp, a.check_events)
        cycles_ok = cycles_check(tmp)
        pairs = []
        small, big = tmp / "threads10.jsonl.gz", tmp / "threads10000.jsonl.gz"
        generate(small, n_events=a.events, threads=10, live=8)
        generate(big, n_events=a.events, threads=10_000, live=8)
        pairs.append(("10,000 threads vs 10", small, big))
        made = {}
        for depth in (10, 100, 1000):
            path = tmp / f"depth{depth}.jsonl"
            made[depth] = path
            nested_trace(path, depth, max(1, a.lock_events // (4 * depth)))
        pairs.append(("depth 100 vs 10", made[10], made[100]))
        pairs.append(("1,000 locks held vs 10", made[10], made[1000]))
        for rings in (2, 250):
            made[-rings] = tmp / f"rings{rings}.jsonl"
            ring_trace(made[-rings], rings, max(1, a.lock_events // (8 + 16 * rings)))
        pairs.append(("250 4-lock cycles vs 2", made[-2], made[-250]))
        for depth in (10, 1000):
            made[depth + 1] = tmp / f"rotated{depth}.jsonl"
            rotated_trace(made[depth + 1], depth, max(1, a.lock_events // (6 * depth)))
        pairs.append(("3 units x 1,000 rotated vs 10", made[11], made[1001]))
        results = {}
        for _, x, y in pairs:
            for path in (x, y):
                if path not in results:
                    results[path] = measure(path, a.repeat)
                    w, c, m = results[path]
                    print(f"{path.name:24} wall {w:7.2f} s  CPU {c:7.2f} s  peak RSS {m:7.0f} MB")
        for label, x, y in pairs:
            (w0, c0, m0), (w1, c1, m1) = results[x], results[y]
            print(f"{label:24} wall x{w1 / w0:.2f}  CPU x{c1 / c0:.2f}  RSS x{m1 / m0:.2f}")
    print(f"racy variables as the oracle's: {ok}")
    print(f"lock cycles as the oracle's: {cycles_ok}")
    print(f"load average after {os.getloadavg()}")


if __name__ == "__main__":
    main()
