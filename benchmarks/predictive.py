"""Benchmark of the predictive analyses against polars reading the trace.

Generates a synthetic trace in the real format (8 threads, 16 locks, 2,000
variables; about 35% of the events are synchronisation: lock acquire/release, a few
queue hand-offs; some unlocked accesses so that there are races to report), then in
the same run, each step timed ``--repeat`` times (median):

* ``read``: ``pl.scan_ndjson(path).collect()``, polars alone reading the file;
* ``load``: ``tracelens.analyze.load(path)`` (the loader, for reference);
* ``pass``: ``hb.tables(events)``, the shared pass over the synchronisation events;
* each analysis alone (data_race, inconsistent_locking, lock_order_inversion,
  deadlock), its own pass included;
* ``predictive``: ``hb.predictive``, all four on one shared pass, what the report pays;
* ``report``: ``tracelens.analyze.analyze(load(path))``, the full report with every
  registered analysis (plus ``predictive`` when it is not registered yet).

The pass cache (``hb.clear_cache``) is cleared before every timed run. Prints wall
times, the peak RSS of the process and the ratios to ``read``::

    python benchmarks/predictive.py --events 1000000
    python benchmarks/predictive.py --events 10000000 --repeat 1 --only report
"""

from __future__ import annotations

import argparse
import random
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import orjson
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tracelens import schema as s
from tracelens.analyze import analyze, load
from tracelens.analyze.hb import (
    clear_cache,
    data_race,
    deadlock,
    inconsistent_locking,
    lock_order_inversion,
    predictive,
    tables,
)

ANALYSES_ALONE = (data_race, inconsistent_locking, lock_order_inversion, deadlock)


def generate(path: Path, events: int, *, threads: int = 8, locks: int = 16, seed: int = 0) -> int:
    """Write a synthetic trace of about ``events`` events; return the exact count."""
    rnd = random.Random(seed)
    nvars = 2000
    racy = {f"v{i}" for i in range(0, nvars, 97)}  # some variables are updated unlocked
    seq = 0
    units = [f"t{i}" for i in range(1, threads + 1)]
    holder: dict[str, str] = {}
    plans: dict[str, list[tuple[str, str, int]]] = {u: [] for u in units}
    out: list[bytes] = []
    sites = {
        k: ("app/worker.py", n, "work")
        for n, k in enumerate(
            ["acq", "read", "write", "rel", "racy_r", "racy_w", "send", "recv", "nested"], 10
        )
    }
    qmsg = 0
    queue: list[int] = []

    def emit(u: str, op: str, target: str, key: str, **extra: object) -> None:
        nonlocal seq
        f, line, func = sites[key]
        d = {
            s.TL: 1,
            s.OP: op,
            s.SEQ: seq,
            s.TS: seq * 100,
            s.PID: 1,
            s.UNIT: u,
            s.TID: int(u[1:]),
            s.THREAD: f"worker-{u[1:]}",
        }
        d[s.VAR if op in s.MEMORY_OPS else s.OBJ] = target
        d.update({s.FILE: f, s.LINE: line, s.FUNC: func})
        d.update(extra)
        out.append(orjson.dumps(d))
        seq += 1

    emit("t0", s.Op.WRITE, "v0", "write")
    for u in units:
        emit("t0", s.Op.FORK, u, "acq", kind="thread")
    with path.open("wb") as fh:
        while seq < events - 2 * threads:
            u = rnd.choice(units)
            if not plans[u]:
                r = rnd.random()
                v = f"v{rnd.randrange(nvars)}"
                lk = f"L{int(v[1:]) % locks}"
                if v in racy:
                    plans[u] = [("read", v, 4), ("write", v, 5)]
                elif r < 0.05:
                    plans[u] = [("send", "q", 6)]
                elif r < 0.07 and queue:
                    plans[u] = [("recv", "q", 7)]
                elif r < 0.09:
                    lk2 = f"L{(int(lk[1:]) + 1) % locks}"
                    a, b = sorted([lk, lk2], key=lambda x: int(x[1:]))
                    plans[u] = [
                        ("acquire", a, 0),
                        ("acquire", b, 8),
                        ("read", v, 1),
                        ("write", v, 2),
                        ("release", b, 3),
                        ("release", a, 3),
                    ]
                else:
                    body = [("read", v, 1), ("write", v, 2)] * rnd.randint(1, 3)
                    plans[u] = [("acquire", lk, 0), *body, ("release", lk, 3)]
            op, target, k = plans[u][0]
            key = list(sites)[k]
            if op == "acquire" and holder.get(target) not in (None, u):
                continue  # blocked: another thread runs
            if op == "recv" and not queue:
                plans[u].pop(0)
                continue
            plans[u].pop(0)
            if op == "acquire":
                holder[target] = u
                emit(u, op, target, key, kind="lock", wait_ns=0)
            elif op == "release":
                holder.pop(target, None)
                emit(u, op, target, key, kind="lock")
            elif op == "send":
                qmsg += 1
                queue.append(qmsg)
                emit(u, op, target, key, kind="queue", msg=qmsg)
            elif op == "recv":
                emit(u, op, target, key, kind="queue", msg=queue.pop(0))
            else:
                emit(u, op, target, key, value=rnd.randrange(1000))
            if len(out) >= 65536:
                fh.write(b"\n".join(out) + b"\n")
                out.clear()
        for u in units:  # finish open critical sections, then join
            for op, target, k in plans[u]:
                if op == "release" and holder.get(target) == u:
                    holder.pop(target)
                    emit(u, op, target, list(sites)[k], kind="lock")
            emit(u, s.Op.END, u, "acq", kind="thread")
            emit("t0", s.Op.JOIN, u, "acq", kind="thread")
        fh.write(b"\n".join(out) + b"\n")
    return seq


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(fn, repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        clear_cache()
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
        clear_cache()
    return statistics.median(times), result


def report(path: Path) -> int:
    """The full report: load, every registered analysis, findings as objects."""
    trace = load(path)
    rep = analyze(trace)
    return len(rep.findings)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--trace", type=Path, help="use this trace instead of generating one")
    ap.add_argument(
        "--only",
        choices=["all", "predictive", "report"],
        default="all",
        help="predictive: read, load, pass, predictive; report: read and report only",
    )
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        path = args.trace or Path(tmp) / "bench.jsonl"
        if args.trace is None:
            generate(path, args.events)
        t_read, df = timed(lambda: pl.scan_ndjson(path).collect(), args.repeat)
        n = df.height  # type: ignore[union-attr]
        sync = df.filter(  # type: ignore[union-attr]
            pl.col(s.OP).is_in(["acquire", "release", "fork", "join", "send", "recv"])
        ).height
        size = path.stat().st_size
        del df
        lines = [
            f"trace: {n:,} events, {sync / n:.0%} synchronisation, {size / 1e6:.0f} MB",
            f"read  (pl.scan_ndjson().collect())  {t_read:7.3f} s",
        ]
        if args.only != "report":
            t_load, trace = timed(lambda: load(path), args.repeat)
            events = trace.events  # type: ignore[union-attr]
            lines.append(f"load  (tracelens.analyze.load)      {t_load:7.3f} s")
            t_pass, _ = timed(lambda: tables(events), args.repeat)
            lines.append(f"pass  (hb.tables, shared)           {t_pass:7.3f} s")
            if args.only == "all":
                for a in ANALYSES_ALONE:
                    t, res = timed(lambda a=a: a(tables(events), events), args.repeat)
                    lines.append(f"  {a.__name__:<22} alone {t:7.3f} s   {res.height} findings")  # type: ignore[union-attr]
            t_all, res = timed(lambda: predictive(events), args.repeat)
            lines.append(
                f"predictive, all four on one pass    {t_all:7.3f} s   {res.height} findings,"  # type: ignore[union-attr]
                f" ratio to read {t_all / t_read:.2f}x"
            )
            lines.append(
                f"load + predictive                   {t_load + t_all:7.3f} s   "
                f"ratio to read {(t_load + t_all) / t_read:.2f}x"
            )
            del trace, events
        t_rep, found = timed(lambda: report(path), args.repeat)
        lines.append(
            f"report (load + every analysis)      {t_rep:7.3f} s   {found} findings,"
            f" ratio to read {t_rep / t_read:.2f}x"
        )
    print("\n".join(lines))
    print(f"peak RSS {peak_rss_mb():,.0f} MB")


if __name__ == "__main__":
    main()
