"""How much does recording cost? CPU ns per recorded access, against a bare-logging baseline.

    python benchmarks/record.py [--events N] [--repeat R] [--article-updates U]

Every variant is a whole fresh process (``python benchmarks/record.py --child ...``);
its CPU time (user + system, ``RUSAGE_CHILDREN``) includes everything: rendering and
writing the trace too, whichever thread did it. The variants run interleaved in every
round; medians of R rounds. On 1 and 4 threads:

  startup   imports only, no accesses (subtracted from plain and baseline)
  plain     the loop on an unwatched dict (what the program costs without tracelens)
  baseline  the loop plus orjson.dumps() of a 13-field event dict and a write to a
            64 KiB-buffered file (the cheapest a structured logger could be)
  c         the loop on a watched dict recorded by tracelens, C accelerator
  python    the same with TRACELENS_PURE_PYTHON=1
  c0, py0   c and python with configure(stack_depth=0): no call stacks, so the
            difference is what recording each access's stack costs
  (the recorded variants are also run with no accesses: configure() + shutdown(),
  subtracted from their per-access figures; that fixed cost is printed on its own)

Every variant's loop runs NEST (default 5) calls deep in its thread, so a recorded
access has a stack of NEST + 1 frames to walk (the default depth is 8).

Then the article's program (10 threads x U read+write updates of a watched dict) plain
and recorded, and the order-fidelity check on examples/article_racy.py (stress=True).
Targets (issue 13): c / baseline <= 1.0 per access; article recorded / plain <= 8x CPU.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = ("startup", "plain", "baseline", "c", "python", "c0", "py0")
#: What each variant's fixed cost is measured by (the same process with no accesses).
FIXED = {
    "plain": "startup",
    "baseline": "startup",
    "c": "c",
    "python": "python",
    "c0": "c0",
    "py0": "py0",
}
RECORDED = ("c", "python", "c0", "py0")
PURE = ("python", "py0")
#: How many calls deep each variant's loop runs.
NEST = 5


def _nested(body: Callable[[int], None], depth: int) -> Callable[[int], None]:
    """``body`` called through ``depth`` more frames (a call stack to record)."""
    if depth == 0:
        return body
    inner = _nested(body, depth - 1)

    def call(per: int) -> None:
        inner(per)

    return call


def _threads(n_threads: int, body: Callable[[int], None], n: int) -> None:
    per = n // n_threads
    ts = [threading.Thread(target=body, args=(per,)) for _ in range(n_threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()


def child(variant: str, n_threads: int, n: int, out: Path) -> None:
    """One variant, in this (fresh) process."""
    import orjson

    import tracelens
    from tracelens.record import _core

    if variant in RECORDED:
        assert (_core.speedups is None) == (variant in PURE), "wrong recorder path"
        tracelens.configure(out, stack_depth=0 if variant in ("c0", "py0") else 8)
        d = tracelens.watch({"k": 0}, "d")
    else:
        d = {"k": 0}

    if variant == "baseline":
        pid = os.getpid()
        f = open(out, "wb", buffering=1 << 16)  # noqa: SIM115
        dumps, opt, mono = orjson.dumps, orjson.OPT_APPEND_NEWLINE, time.monotonic_ns

        def body(per: int) -> None:
            for i in range(per):
                d["k"] = i
                f.write(
                    dumps(
                        {
                            "tl": 1,
                            "event": "write",
                            "seq": i,
                            "ts": mono(),
                            "pid": pid,
                            "unit": "t1",
                            "tid": 1,
                            "thread": "Thread-1",
                            "var": "d['k']",
                            "value": i,
                            "file": __file__,
                            "line": 60,
                            "func": "body",
                        },
                        option=opt,
                    )
                )
    else:

        def body(per: int) -> None:
            for i in range(per):
                d["k"] = i

    if variant != "startup":
        _threads(n_threads, _nested(body, NEST), n)
    if variant == "baseline":
        f.close()
    if variant in RECORDED:
        tracelens.shutdown()


ARTICLE = """
import sys, threading
THREADS, UPDATES = 10, {updates}
if sys.argv[1] != "-":
    import tracelens
    tracelens.configure(sys.argv[1])
    model = tracelens.watch({{"weight": 1.0}}, "model")
else:
    model = {{"weight": 1.0}}

def worker():
    for _ in range(UPDATES):
        model["weight"] += 0.1

threads = [threading.Thread(target=worker) for _ in range(THREADS)]
for t in threads:
    t.start()
for t in threads:
    t.join()
if sys.argv[1] != "-":
    tracelens.shutdown()
"""


def cpu_of(cmd: list[str], env: dict[str, str] | None = None) -> float:
    """CPU seconds (user + system) of one whole command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(cmd, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def fidelity() -> tuple[int, int]:
    from tracelens.testing import order_fidelity, read_events

    with tempfile.TemporaryDirectory() as tmp:
        trace = Path(tmp) / "racy.jsonl"
        subprocess.run(
            [sys.executable, "examples/article_racy.py", str(trace)],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            check=True,
            capture_output=True,
        )
        f = order_fidelity(read_events(trace))
    return f.checked, f.consistent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--article-updates", type=int, default=10_000)
    ap.add_argument("--child", nargs=4, metavar=("VARIANT", "THREADS", "EVENTS", "OUT"))
    args = ap.parse_args()
    if args.child:
        variant, n_threads, n, out = args.child
        child(variant, int(n_threads), int(n), Path(out))
        return
    sys.path.insert(0, str(ROOT))
    from tracelens.record import _core

    if _core.speedups is None:
        print("the C accelerator is not built (or TRACELENS_PURE_PYTHON is set): c == python")
    n = args.events
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("TRACELENS_PURE_PYTHON", None)
    py_env = {**env, "TRACELENS_PURE_PYTHON": "1"}
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} cpus, {n} accesses, "
        f"median of {args.repeat} fresh processes, CPU time (user+sys)"
    )
    print(f"load average before: {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as tmpdir:
        out = str(Path(tmpdir) / "out.jsonl")
        for n_threads in (1, 4):
            times: dict[tuple[str, int], list[float]] = {}
            for _ in range(args.repeat):  # interleaved, so drift hits all alike
                for v in VARIANTS:
                    runs = [0] if v == "startup" else [0, n] if FIXED[v] == v else [n]
                    for events in runs:
                        Path(out).unlink(missing_ok=True)
                        cmd = [sys.executable, __file__, "--child", v, str(n_threads)]
                        cmd += [str(events), out]
                        cpu = cpu_of(cmd, py_env if v in PURE else env)
                        times.setdefault((v, events), []).append(cpu)
            med = {k: statistics.median(v) for k, v in times.items()}
            ns = {k: (med[k, n] - med[FIXED[k], 0]) / n * 1e9 for k in VARIANTS if k != "startup"}
            print(
                f"\n{n_threads} thread(s): fixed CPU cost: startup {med['startup', 0] * 1e3:.0f} ms"
                f", configure+shutdown (c) {med['c', 0] * 1e3:.0f} ms"
                f", (python) {med['python', 0] * 1e3:.0f} ms"
            )
            for k, v in ns.items():
                print(f"  {k:9s} {v:8.0f} ns/access  ({med[k, n]:.3f} s whole process)")
            for k in ("c", "python"):
                only = (ns[k] - ns["plain"]) / (ns["baseline"] - ns["plain"])
                print(
                    f"  {k} / baseline per access: {ns[k] / ns['baseline']:.2f}x  "
                    f"(logging cost only: {only:.2f}x; target <= 1.0)"
                )
            for k, k0 in (("c", "c0"), ("python", "py0")):
                print(
                    f"  {k} stacks of {NEST + 1} frames: {ns[k] - ns[k0]:+.0f} ns/access "
                    f"({ns[k] / ns[k0]:.2f}x {k0})"
                )
        prog = Path(tmpdir) / "article.py"
        prog.write_text(ARTICLE.format(updates=args.article_updates))
        art: dict[str, list[float]] = {"plain": [], "c": [], "python": []}
        for _ in range(args.repeat):
            art["plain"].append(cpu_of([sys.executable, str(prog), "-"], env))
            art["c"].append(cpu_of([sys.executable, str(prog), out], env))
            art["python"].append(cpu_of([sys.executable, str(prog), out], py_env))
            Path(out).unlink(missing_ok=True)
        am = {k: statistics.median(v) for k, v in art.items()}
        print(f"\narticle program, 10 threads x {args.article_updates} read+write updates:")
        for k, v in am.items():
            print(f"  {k:9s} {v:.3f} s CPU  ({v / am['plain']:.1f}x plain)")
        print("  target: recorded <= 8x plain")
    checked, consistent = fidelity()
    print(
        f"\norder fidelity, article_racy.py under stress=True: {consistent}/{checked} reads saw "
        f"the latest recorded write ({100 * consistent / max(checked, 1):.1f}%)"
    )
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
