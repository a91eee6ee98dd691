"""Objects only one unit touches: their accesses are kept aside, not written, until another
unit touches the object (``shadow.defer_private``), and no finding is lost for it.

The programs here run their threads in a fixed order, step by step, passing a baton made
of the recorder's own (unrecorded) locks: the same interleaving in every run, and no
happens-before edge between the steps, so the accesses of two threads to one object race
as the program's author would fear. Each run is made twice, with every access written
(``--record-private``) and with the default, and the races, lost updates and atomicity
violations found must be the same.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracelens.analyze import analyze, load

T = 120

HEAD = """
import queue
import threading
from tracelens.record._core import original_allocate_lock as baton

class Box:
    def __init__(self):
        self.x = 0
        self.y = 0

G = [Box(), Box()]
SHARE = {}
L = threading.Lock()
Q = queue.Queue()
B = [baton() for _ in range(N + 1)]
for b in B:
    b.acquire()
"""

TAIL = """
threads = [threading.Thread(target=w) for w in WORKERS]
for t in threads:
    t.start()
B[0].release()
for t in threads:
    t.join()
"""

#: One step of a thread (``{a}``: an attribute, ``{i}``: one of the thread's own boxes,
#: ``{j}``: a global box).
STEPS = (
    "G[{j}].{a} = G[{j}].{a} + 1",
    "v = G[{j}].{a}",
    "mine[{i}].{a} += 1",
    "v = mine[{i}].{a}",
    "SHARE[{i}] = mine[{i}]",
    "o = SHARE.get({i})\n    if o is not None:\n        o.{a} += 1",
    "o = SHARE.get({i})\n    if o is not None:\n        v = o.{a}",
    "with L:\n        G[{j}].{a} += 1",
    "with L:\n        mine[{i}].{a} += 1",
    "Q.put(mine[{i}])",
    "if not Q.empty():\n        o = Q.get()\n        o.{a} += 1",
    "mine[{i}].{a} = 5",
)


def program(threads: int, steps: list[tuple[int, int, int, int, str]]) -> str:
    """The program: ``threads`` workers, each first making its own two boxes (in turn, so
    that every run names them alike), then the ``steps`` (thread, step, box, global
    box, attribute) in order."""
    order = [(t, -1, 0, 0, "x") for t in range(threads)] + steps
    bodies: list[list[str]] = [[] for _ in range(threads)]
    for k, (t, step, i, j, a) in enumerate(order):
        stmt = "mine = [Box(), Box()]" if step < 0 else STEPS[step].format(i=i, j=j, a=a)
        bodies[t].append(f"    B[{k}].acquire()\n    {stmt}\n    B[{k + 1}].release()")
    workers = [f"def w{t}():\n    mine = None\n" + "\n".join(bodies[t]) for t in range(threads)]
    names = ", ".join(f"w{t}" for t in range(threads))
    return (
        f"N = {len(order)}\n"
        + textwrap.dedent(HEAD)
        + "\n\n".join(workers)
        + f"\n\nWORKERS = [{names}]\n"
        + textwrap.dedent(TAIL)
    )


def _run(tmp_path: Path, name: str, source: str, *args: str) -> Path:
    script = tmp_path / f"{name}.py"
    script.write_text(source)
    trace = tmp_path / f"{name}.jsonl"
    out = subprocess.run(
        [sys.executable, "-m", "tracelens", "run", "-o", str(trace), *args, str(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=T,
    )
    assert out.returncode == 0, out.stderr
    return trace


#: The findings of accesses to shared objects that keeping private ones aside must keep.
#: (``inconsistent_locking`` may lose an object's unlocked accesses from before it was
#: shared: Eraser's *exclusive* state, ``docs/instrumentation.md``.)
KINDS = frozenset({"data_race", "lost_update", "atomicity_violation"})


def _found(trace: Path) -> set[tuple[str, str]]:
    findings = analyze(load(trace)).findings
    return {(f.kind, v) for f in findings if f.kind in KINDS for v in f.variables}


def _both(tmp_path: Path, source: str) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    """The findings with every access written, and with the default."""
    full = _found(_run(tmp_path, "full", source, "--record-private"))
    deferred = _found(_run(tmp_path, "deferred", source))
    return full, deferred


_STEP = st.tuples(
    st.integers(0, 2),
    st.integers(0, len(STEPS) - 1),
    st.integers(0, 1),
    st.integers(0, 1),
    st.sampled_from(["x", "y"]),
)


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(steps=st.lists(_STEP, min_size=1, max_size=14))
def test_keeping_private_accesses_aside_loses_no_finding(
    tmp_path_factory: object, steps: list[tuple[int, int, int, int, str]]
) -> None:
    """On any program of three threads touching their own, handed-over and global objects
    in a fixed interleaving, the default run finds exactly what the run that writes every
    access finds (kind and variable)."""
    d = tmp_path_factory.mktemp("private")  # type: ignore[attr-defined]
    full, deferred = _both(d, program(3, steps))
    assert deferred == full


def test_an_object_handed_over_without_synchronisation_races(tmp_path: Path) -> None:
    """A box one thread fills and another bumps, with nothing ordering them, is a data
    race on its attribute, found although the first thread's accesses were kept aside."""
    source = program(2, [(0, 2, 0, 0, "x"), (0, 4, 0, 0, "x"), (1, 5, 0, 0, "x")])
    full, deferred = _both(tmp_path, source)
    assert ("data_race", "Box#3.x") in deferred
    assert deferred == full


def test_an_object_handed_over_through_a_queue_does_not_race(tmp_path: Path) -> None:
    """The same box handed over through a ``queue.Queue`` (the put happens before the get):
    the kept accesses precede the hand-off and are ordered by it, so nothing is found."""
    source = program(2, [(0, 2, 0, 0, "x"), (0, 9, 0, 0, "x"), (1, 10, 0, 0, "x")])
    full, deferred = _both(tmp_path, source)
    assert deferred == full == set()


def test_objects_only_one_thread_touches_leave_only_their_first_access(tmp_path: Path) -> None:
    """A thread's own boxes, never handed over, leave one access each in the default trace
    (the first, so that the trace shows they were seen) and all of them with
    ``--record-private``."""
    source = program(2, [(0, 2, 0, 0, "x"), (0, 3, 1, 0, "y"), (1, 2, 0, 0, "x")])

    def boxes(trace: Path) -> int:
        events = load(trace).events.collect()
        return events.filter(pl.col("var").str.contains(r"^Box#[3-6]\.")).height

    assert boxes(_run(tmp_path, "full", source, "--record-private")) > 4
    assert boxes(_run(tmp_path, "deferred", source)) == 4  # Box#3 to Box#6


def test_a_read_kept_after_the_last_write_does_not_replace_it(tmp_path: Path) -> None:
    """The owner writes, then reads; the other thread only reads: the race is with the
    kept write, which the later read must not have pushed out."""
    steps = [(0, 2, 0, 0, "x"), (0, 3, 0, 0, "x"), (0, 4, 0, 0, "x"), (1, 6, 0, 0, "x")]
    full, deferred = _both(tmp_path, program(2, steps))
    assert ("data_race", "Box#3.x") in deferred
    assert deferred == full


def test_a_read_modify_write_window_spanning_the_hand_over_is_a_lost_update(
    tmp_path: Path,
) -> None:
    """The owner's read, kept aside, opens a window that the other thread's write falls
    into before the owner writes back: a lost update, found as with every access written."""
    source = program(
        2,
        [(0, 4, 0, 0, "x"), (0, 3, 0, 0, "x"), (1, 5, 0, 0, "x"), (0, 11, 0, 0, "x")],
    )
    full, deferred = _both(tmp_path, source)
    assert ("lost_update", "Box#3.x") in deferred
    assert deferred == full
