"""The cost of recording unmarked code: plain, ``tracelens run --no-instrument``, ``tracelens run``
(and ``tracelens run --record-private``).

    python benchmarks/instrument.py [--repeat 5] [--scale 1.0] [--programs NAME...]

Three programs, each run as a whole command in a fresh process, the three ways side by
side in every round:

* ``article``: the article's racy loop scaled up (4 threads updating a module-level
  dict entry);
* ``objects``: a dict- and attribute-heavy pure-Python workload with 4 threads (each
  with its own objects and a shared registry under a lock);
* ``builtins``: 4 threads each reading their own list, dict and deque through ``len``,
  truth tests, ``==`` and ``sorted``, and a shared dict subclass under a lock (the
  whole-container reads recorded since issue 12's builtins);
* ``tests``: a CPU-bound single-threaded loop of truth tests, ``len`` and ``==`` over
  local scalars and a tuple: the rewrite's gates, which record nothing there;
* ``cpu``: a CPU-bound single-threaded loop over local variables and arithmetic, which
  the rewrite leaves alone;
* ``children``: two spawned ``multiprocessing`` children, each spending its time in the
  standard library (``json.dumps``), which is not instrumented: the children are
  rewritten as the parent is, and should run at the speed of ``--no-instrument``.
  The CPU time of every program includes its children's (they are waited for).

Prints the median CPU time (user + system of the child) of each, the slowdowns against
the plain run, the accesses the program made (those ``--record-private`` writes: every
one), the trace bytes per access and the CPU time per access (instrumented minus
``--no-instrument``, over the accesses) with and without ``--record-private`` (by default
the accesses of objects only one thread touches are kept aside and dropped with the
object, ``docs/instrumentation.md``), and the load average before and after. The target
(the instrumentation issue): at most 10x on ``objects`` with instrumentation, and the
uninstrumented run close to plain.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

PROGRAMS = {
    "article": """
        import threading
        model_params = {"weight": 1.0}

        def update_model(delta):
            current = model_params["weight"]
            model_params["weight"] = current + delta

        def worker():
            for _ in range(N):
                update_model(0.1)

        threads = [threading.Thread(target=worker) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    """,
    "objects": """
        import threading

        class Account:
            def __init__(self, name):
                self.name = name
                self.balance = 0
                self.history = []

        REGISTRY = {}
        LOCK = threading.Lock()

        def worker(w):
            accounts = {i: Account(f"{w}-{i}") for i in range(50)}
            for n in range(N):
                a = accounts[n % 50]
                a.balance += n
                if a.balance > 1000:
                    a.history.append(a.balance)
                    a.balance = 0
                if n % 100 == 0:
                    with LOCK:
                        REGISTRY[a.name] = a.balance

        threads = [threading.Thread(target=worker, args=(w,)) for w in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    """,
    "builtins": """
        import threading
        from collections import deque

        class Registry(dict):
            pass

        SHARED = Registry()
        LOCK = threading.Lock()

        def worker(w):
            items, seen, queue = [], {}, deque()
            for n in range(N):
                items.append(n)
                if len(items) > 20:
                    items.clear()
                seen[n % 30] = n
                if seen and n % 7 in seen:
                    queue.append(n)
                while len(queue) > 5:
                    queue.popleft()
                if items == seen:
                    pass
                if n % 100 == 0:
                    with LOCK:
                        SHARED[w] = sorted(seen)[:3]

        threads = [threading.Thread(target=worker, args=(w,)) for w in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    """,
    "tests": """
        def scan(n):
            flag, total, small = 1, 0, (1, 2, 3)
            for i in range(n):
                if flag and total >= 0:
                    total += len(small)
                if not i:
                    total -= 1
                if i == total:
                    total += 1
            return total

        scan(N)
    """,
    "cpu": """
        def collatz(n):
            steps = 0
            while n != 1:
                n = n // 2 if n % 2 == 0 else 3 * n + 1
                steps += 1
            return steps

        total = 0
        for i in range(1, N):
            total += collatz(i)
    """,
    "children": """
        import json
        import multiprocessing as mp

        def work(n):
            size = 0
            for i in range(n):
                size += len(json.dumps({"i": i, "s": str(i)}))
            return size

        if __name__ == "__main__":
            ctx = mp.get_context("spawn")
            procs = [ctx.Process(target=work, args=(N,)) for _ in range(2)]
            for p in procs:
                p.start()
            for p in procs:
                p.join()
    """,
}
#: Iterations per program at --scale 1.
SIZES = {
    "article": 20_000,
    "objects": 20_000,
    "builtins": 5_000,
    "tests": 1_000_000,
    "cpu": 30_000,
    "children": 100_000,
}
MODES = ("plain", "no-instrument", "instrument", "record-private")


def _command(mode: str, script: Path, trace: Path) -> list[str]:
    if mode == "plain":
        return [sys.executable, str(script)]
    extra = {"no-instrument": ["--no-instrument"], "record-private": ["--record-private"]}
    extra_args = extra.get(mode, [])
    return [sys.executable, "-m", "tracelens", "run", "-o", str(trace), *extra_args, str(script)]


def _cpu(command: list[str], cwd: Path, tree: Path | None = None) -> float:
    """CPU time of a command; ``tree``: the tracelens source tree it imports instead."""
    env = None if tree is None else {**os.environ, "PYTHONPATH": str(tree)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(command, cwd=cwd, check=True, capture_output=True, env=env)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _accesses(trace: Path) -> int:
    import orjson

    n = 0
    with trace.open("rb") as f:
        for line in f:
            if b'"read"' in line or b'"write"' in line:
                ev = orjson.loads(line)
                n += ev.get("event") in ("read", "write")
    return n


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--scale", type=float, default=1.0)
    p.add_argument(
        "--baseline",
        type=Path,
        help="another tracelens source tree (its C accelerator built in place): its"
        " instrumented run is timed in the same rounds, for a before/after ratio",
    )
    p.add_argument(
        "--programs", nargs="+", choices=sorted(PROGRAMS), default=list(PROGRAMS), metavar="NAME"
    )
    a = p.parse_args(argv)
    print(f"load average before: {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        for name in a.programs:
            body = PROGRAMS[name]
            script = d / f"{name}.py"
            n = int(SIZES[name] * a.scale)
            script.write_text(f"N = {n}\n" + textwrap.dedent(body))
            trace = d / f"{name}.jsonl"
            full = d / f"{name}.full.jsonl"
            times: dict[str, list[float]] = {m: [] for m in (*MODES, "baseline")}
            for _ in range(a.repeat):
                for mode in MODES:
                    out = full if mode == "record-private" else trace
                    times[mode].append(_cpu(_command(mode, script, out), d))
                if a.baseline is not None:
                    command = _command("instrument", script, d / "baseline.jsonl")
                    times["baseline"].append(_cpu(command, d, a.baseline))
            med = {m: statistics.median(v) for m, v in times.items() if v}
            accesses = _accesses(full)  # every access the program made
            written = _accesses(trace)
            plain, bare, inst = med["plain"], med["no-instrument"], med["instrument"]
            every = med["record-private"]
            per = every_per = "no accesses"
            if accesses:  # what each access costs beyond the program and tracelens run
                per = f"{trace.stat().st_size / accesses:.0f} B"
                per += f", {(inst - bare) / accesses * 1e9:.0f} ns CPU per access"
                every_per = f"{full.stat().st_size / accesses:.0f} B"
                every_per += f", {(every - bare) / accesses * 1e9:.0f} ns CPU per access"
            print(
                f"{name:8s} plain {plain:6.2f} s   --no-instrument {bare:6.2f} s"
                f" ({bare / plain:5.2f}x)   instrumented {inst:6.2f} s ({inst / plain:5.2f}x)"
                f"   {accesses:,} accesses, {written:,} written, {per}"
                f" (CPU, median of {a.repeat})"
            )
            print(
                f"{'':8s} --record-private {every:6.2f} s ({every / plain:5.2f}x):"
                f" every access written, {every_per}"
            )
            if a.baseline is not None:
                base = statistics.median(times["baseline"])
                print(
                    f"{'':8s} baseline instrumented {base:6.2f} s ({base / plain:5.2f}x):"
                    f" this tree takes {inst / base:4.2f}x its CPU time"
                )
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
