"""Hypothesis strategies for traces.

* ``interleavings``: random interleavings of several units' accesses, locked blocks
  and atomic regions, as trace-file events (``tests.traces.write_trace`` writes them);
* ``programs`` and ``schedule``: small programs with forks, joins, locks and
  hand-offs, and one well-formed schedule of each, as steps (``tests.traces``).

Programs: a main unit ``t0`` plus a few workers. Each worker runs a list of
actions: plain accesses (reads, writes, commuting writes), locked blocks (acquire,
accesses, release), sends and receives on a queue ``q`` (FIFO, messages have ids)
and an event ``ev`` (no message:
a receive needs one earlier send). Main writes some variables, forks the workers,
does a few accesses, joins some workers and accesses again. A random scheduler
interleaves the units, honouring locks, joins and receives, so every trace is one
that a real run could have recorded.
"""

from __future__ import annotations

import random
from typing import Any

from hypothesis import strategies as st

from tests.traces import TraceBuilder
from tracelens import schema as s

__all__ = ["interleavings", "programs", "schedule"]


# --- Hypothesis ------------------------------------------------------------------------

_VARS = ("x", "y", "z")
_LOCKS = ("L1", "L2")


@st.composite
def _access(draw: st.DrawFn, n_vars: int) -> tuple[str, ...]:
    op = draw(st.sampled_from((s.Op.READ, s.Op.WRITE)))
    var = draw(st.sampled_from(_VARS[:n_vars]))
    line = draw(st.integers(1, 3)) + (10 if op == s.Op.WRITE else 0)
    return ("acc", op, var, str(line))


@st.composite
def _block(draw: st.DrawFn, n_vars: int, depth: int = 0) -> list[tuple[str, ...]]:
    """A piece of one unit's program: an access, a locked block or an atomic region."""
    kind = draw(st.sampled_from(("acc", "acc", "locked", "atomic") if depth < 2 else ("acc",)))
    if kind == "acc":
        return [draw(_access(n_vars))]
    inner = draw(st.lists(_block(n_vars, depth + 1), min_size=1, max_size=3))
    body = [step for b in inner for step in b]
    if kind == "locked":
        lock = draw(st.sampled_from(_LOCKS))
        internal = draw(st.booleans()) and draw(st.booleans())  # now and then
        flag = "internal" if internal else ""
        return [("acq", lock, flag), *body, ("rel", lock, flag)]
    return [("abegin",), *body, ("aend",)]


@st.composite
def interleavings(
    draw: st.DrawFn, *, max_units: int = 4, max_vars: int = 3, max_blocks: int = 6
) -> list[dict[str, Any]]:
    """Random traces: 2..``max_units`` units, each running a random program of accesses,
    lock holds and atomic regions on 1..``max_vars`` variables, interleaved at random.

    Locks are *not* exclusive here (the window definitions do not depend on it), so
    the traces cover interleavings a real run could not produce as well.

    Returns:
        Events in sequence order, in the real format (one process).
    """
    n_units = draw(st.integers(2, max_units))
    n_vars = draw(st.integers(1, max_vars))
    programs = []
    for _ in range(n_units):
        blocks = draw(st.lists(_block(n_vars), min_size=1, max_size=max_blocks))
        programs.append([step for b in blocks for step in b])
    b = TraceBuilder()
    pcs = [0] * n_units
    live = [i for i in range(n_units) if programs[i]]
    while live:
        i = live[draw(st.integers(0, len(live) - 1))]
        step = programs[i][pcs[i]]
        unit = f"t{i + 1}"
        if step[0] == "acc":
            _, op, var, line = step
            if op == s.Op.READ:
                b.read(unit, var, line=int(line))
            else:
                b.write(unit, var, line=int(line))
        elif step[0] == "acq":
            b.acquire(unit, step[1], internal=step[2] == "internal")
        elif step[0] == "rel":
            b.release(unit, step[1], internal=step[2] == "internal")
        elif step[0] == "abegin":
            b.atomic_begin(unit)
        else:
            b.atomic_end(unit)
        pcs[i] += 1
        if pcs[i] == len(programs[i]):
            live.remove(i)
    return b.events


# --- programs --------------------------------------------------------------------------

PROGRAM_VARS = ("x", "y", "z")
PROGRAM_LOCKS = ("L1", "L2")


def _actions(
    variables: tuple[str, ...], locks: tuple[str, ...], foreign: bool
) -> tuple[st.SearchStrategy[Any], st.SearchStrategy[Any]]:
    """(access, action) strategies over these variables and locks."""
    #: "cwrite": a commuting write (``schema.Kind.COMMUTING``)
    access = st.tuples(st.sampled_from(["read", "write", "cwrite"]), st.sampled_from(variables))
    locked = st.tuples(st.just("locked"), st.sampled_from(locks), st.lists(access, max_size=3))
    handoff = st.tuples(st.sampled_from(["send_q", "recv_q", "send_ev", "recv_ev"]))
    # "frelease": release a lock another unit holds (a ``Lock`` as a binary semaphore)
    frelease = st.tuples(st.just("frelease"), st.sampled_from(locks))
    if foreign:
        return access, st.one_of(access, access, locked, handoff, frelease)
    return access, st.one_of(access, access, locked, handoff)


@st.composite
def programs(
    draw: Any,
    variables: tuple[str, ...] = PROGRAM_VARS,
    locks: tuple[str, ...] = PROGRAM_LOCKS,
    *,
    foreign: bool = False,
) -> dict[str, Any]:
    """A program over these variables and locks; ``foreign``: workers may release a
    lock that another unit holds."""
    access, action = _actions(variables, locks, foreign)
    n = draw(st.integers(1, 3))
    workers = {f"t{i}": draw(st.lists(action, max_size=6)) for i in range(1, n + 1)}
    return {
        "init": draw(st.lists(access, max_size=2)),
        "workers": workers,
        "middle": draw(st.lists(access, max_size=2)),
        "joins": draw(st.lists(st.sampled_from(sorted(workers)), unique=True)),
        "after": draw(st.lists(access, max_size=2)),
        "seed": draw(st.integers(0, 2**32 - 1)),
    }


@st.composite
def short_lived_programs(draw: Any) -> dict[str, Any]:
    """Programs with a thread per request: 20..45 workers (more units than one trie
    node holds), the main thread starting a few at a time and joining some before it
    starts the next ones (``schedule`` runs ``main`` as the main thread's plan)."""
    access, action = _actions(PROGRAM_VARS, PROGRAM_LOCKS, False)
    n = draw(st.integers(20, 45))
    workers = {f"t{i}": draw(st.lists(action, max_size=3)) for i in range(1, n + 1)}
    main: list[tuple[str, str]] = [*draw(st.lists(access, max_size=1))]
    names = list(workers)
    i = 0
    while i < n:
        wave = names[i : i + draw(st.integers(1, 4))]
        i += len(wave)
        main += [("fork", w) for w in wave]
        main += draw(st.lists(access, max_size=1))
        main += [("join", w) for w in wave if draw(st.booleans())]
    return {"workers": workers, "main": main, "seed": draw(st.integers(0, 2**32 - 1))}


def _expand(actions: list[Any]) -> list[tuple[str, str]]:
    steps: list[tuple[str, str]] = []
    for a in actions:
        if a[0] == "locked":
            steps.append(("acquire", a[1]))
            steps += list(a[2])
            steps.append(("release", a[1]))
        elif a[0] == "frelease":
            steps.append(("frelease", a[1]))
        elif a[0] in ("send_q", "recv_q", "send_ev", "recv_ev"):
            op, obj = a[0].split("_")
            steps.append((op, obj))
        else:
            steps.append(a)
    return steps


def schedule(prog: dict[str, Any]) -> list[tuple[Any, ...]]:
    """One interleaving of the program, as steps (``tests.traces.frame``)."""
    rnd = random.Random(prog["seed"])
    main = prog.get("main")
    if main is None:
        main = [
            *prog["init"],
            *[("fork", w) for w in prog["workers"]],
            *prog["middle"],
            *[("join", w) for w in prog["joins"]],
            *prog["after"],
        ]
    plans: dict[str, list[tuple[str, str]]] = {"t0": list(main)}
    for w, acts in prog["workers"].items():
        plans[w] = _expand(acts)
    started = {"t0"}
    done: set[str] = set()
    holder: dict[str, str] = {}
    queue: list[int] = []
    ev_sent = False
    msg = 0
    out: list[tuple[Any, ...]] = []

    def runnable(u: str) -> bool:
        if u not in started or u in done:
            return False
        if not plans[u]:
            return True  # will end
        op, obj = plans[u][0]
        if op == "acquire":
            return obj not in holder
        if op == "frelease":
            return holder.get(obj, u) != u
        if op == "join":
            return obj in done
        if op == "recv":
            return bool(queue) if obj == "q" else ev_sent
        return True

    while True:
        ready = [u for u in sorted(plans) if runnable(u)]
        if not ready:
            break  # finished, or every remaining unit waits for something never coming
        u = rnd.choice(ready)
        if not plans[u]:
            done.add(u)
            if u != "t0":
                out.append((u, "end", u))
            continue
        op, obj = plans[u].pop(0)
        extra: dict[str, Any] = {}
        plain_release = op == "release"
        if op == "cwrite":
            op, extra["kind"] = s.Op.WRITE, s.Kind.COMMUTING
        elif op == "frelease":
            op = s.Op.RELEASE
        if op == "fork":
            started.add(obj)
        elif op == "acquire":
            holder[obj] = u
        elif op == "release":
            if holder.get(obj) != u and plain_release:
                continue  # its lock was released by another unit: this one would raise
            holder.pop(obj, None)
        elif op == "send" and obj == "q":
            msg += 1
            queue.append(msg)
            extra["msg"] = msg
        elif op == "send":
            ev_sent = True
        elif op == "recv" and obj == "q":
            extra["msg"] = queue.pop(0)
        out.append((u, op, obj, extra) if extra else (u, op, obj))
    return out
