"""A generator of synthetic traces in the real trace format, for tests and benchmarks.

It simulates a program: ``threads`` worker threads, each running a loop of small
"tasks" over ``variables`` shared variables guarded by ``locks`` locks, scheduled by
a seeded random scheduler that switches threads between any two events (so unlocked
read-modify-write sequences really interleave). Locks are honoured: a thread that
wants a held lock records ``acquire_try`` and waits until the holder releases it.
Values are consistent: a read records the value of the latest write.

The mix of tasks (weights in ``MIX``):

* ``locked_update``: acquire the variable's lock, read, write (value + 1), release.
  Correct code: it must never produce a ``lost_update``.
* ``locked_read``: acquire, read, release.
* ``config_read``: an unlocked read of a read-mostly variable (no window): one of the
  counters (which locked tasks update, so a data race), or with ``config_vars`` one of
  that many ``config[i]`` variables the main thread writes before starting the
  workers (initialise-then-share: no race).
* ``racy_update``: read, write *without* the lock, on one of the ``racy`` variables
  (the injected bug: interleavings make lost updates).
* ``atomic_update``: a ``tracelens.atomic`` region around a locked read/write.
* ``handoff``: a queue ``send``/``recv`` pair.

Like the real sink, events are written in per-thread batches (file order is not
sequence order) and the main thread records ``meta``, ``fork``/``join`` and
``begin``/``end`` events. Optional noise for loader tests: application log lines,
malformed lines and a truncated last line.

Usable as a module (``generate``/``events``) and as a script::

    python -m tests.tracegen OUT.jsonl --events 1000000 [--threads 16] [--seed 0]
"""

from __future__ import annotations

import argparse
import gzip
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from tests.traces import event
from tracelens import schema as s

#: Relative weights of the simulated tasks.
MIX: dict[str, int] = {
    "locked_update": 55,
    "locked_read": 15,
    "config_read": 20,
    "racy_update": 3,
    "atomic_update": 4,
    "handoff": 3,
}

# Code sites of the simulated program: (file, line, func) per step of each task.
_F = "app/worker.py"
SITES: dict[str, tuple[str, int, str]] = {
    "lock_acq": (_F, 40, "update_counter"),
    "lock_read": (_F, 41, "update_counter"),
    "lock_write": (_F, 42, "update_counter"),
    "lock_rel": (_F, 40, "update_counter"),
    "lread_acq": (_F, 60, "snapshot"),
    "lread_read": (_F, 61, "snapshot"),
    "lread_rel": (_F, 60, "snapshot"),
    "cfg_read": ("app/config.py", 12, "get_setting"),
    "racy_read": ("app/stats.py", 27, "bump_hits"),
    "racy_write": ("app/stats.py", 28, "bump_hits"),
    "atom_begin": ("app/ledger.py", 80, "transfer"),
    "atom_acq": ("app/ledger.py", 81, "transfer"),
    "atom_read": ("app/ledger.py", 82, "transfer"),
    "atom_write": ("app/ledger.py", 83, "transfer"),
    "atom_rel": ("app/ledger.py", 81, "transfer"),
    "atom_end": ("app/ledger.py", 80, "transfer"),
    "send": ("app/pipeline.py", 15, "produce"),
    "recv": ("app/pipeline.py", 22, "consume"),
    "main": ("app/main.py", 10, "main"),
}


@dataclass
class GenInfo:
    """What a generated trace holds (for assertions and benchmark labels)."""

    events: int = 0
    lines: int = 0
    app_lines: int = 0
    malformed: int = 0
    racy_vars: list[str] = field(default_factory=list)
    threads: int = 0


def events(
    *,
    n_events: int,
    threads: int = 16,
    variables: int = 2000,
    locks: int = 64,
    racy: int = 3,
    config_vars: int = 0,
    seed: int = 0,
    pid: int = 4242,
    batch: int = 256,
    live: int | None = None,
    info: GenInfo | None = None,
) -> Iterator[dict[str, Any]]:
    """Yield about ``n_events`` tracelens events as dicts, in file (batch) order.

    Args:
        n_events: Events to produce (the run stops at the first task boundary after).
        threads: Worker threads (units ``t1``..``tN``; ``t0`` is the main thread).
        variables: Shared variables (``counters[i]``); the first ``racy`` are updated
            without their lock by ``racy_update`` tasks.
        locks: Locks; variable ``i`` is guarded by lock ``i % locks``.
        racy: How many variables the injected bug touches.
        config_vars: Read-only configuration variables for ``config_read`` (0: it
            reads the counters).
        seed: Seed of the scheduler and the task choices.
        pid: The process id written into every event.
        batch: Events a thread buffers before they are "written" (file order).
        live: At most this many workers alive at once (a thread per request): each
            worker makes about ``n_events / threads`` events, then ends and the main
            thread joins it and starts the next (None: all start first, end last).
        info: Filled with counts and the racy variable names when given.

    Returns:
        An iterator of event dicts.
    """
    rng = random.Random(seed)
    info = info if info is not None else GenInfo()
    info.threads = threads
    var_names = [f"counters[{i}]" for i in range(variables)]
    info.racy_vars = var_names[:racy]
    lock_names = [f"Lock@worker.py:{20 + i % 7}#{i + 1}" for i in range(locks)]
    memory = [0] * variables
    holder: dict[int, str] = {}  # lock index -> unit holding it
    seq = 0
    ts = 1_000_000_000
    buffers: dict[str, list[dict[str, Any]]] = {}
    tnames = {"t0": "MainThread"}
    tnames.update({f"t{i}": f"worker-{i}" for i in range(1, threads + 1)})
    tids = {u: int(u[1:]) for u in tnames}
    task_names = list(MIX)
    task_weights = list(MIX.values())
    produced = 0

    def ev(unit: str, op: str, site: str, **kw: Any) -> None:
        nonlocal seq, ts, produced
        f, ln, fn = SITES[site]
        d = event(
            op,
            seq=seq,
            ts=ts,
            pid=pid,
            unit=unit,
            **{s.TID: tids[unit], s.THREAD: tnames[unit]},
            **kw,
            **{s.FILE: f, s.LINE: ln, s.FUNC: fn},
        )
        seq += 1
        ts += rng.randrange(200, 3000)
        produced += 1
        buffers.setdefault(unit, []).append(d)

    def flush(unit: str, force: bool = False) -> Iterator[dict[str, Any]]:
        buf = buffers.get(unit)
        if buf and (force or len(buf) >= batch):
            buffers[unit] = []
            yield from buf

    # main thread: meta and forks
    meta = {
        s.TL: s.FORMAT_VERSION, s.OP: s.Op.META, s.SEQ: seq, s.TS: ts, s.PID: pid,
        s.UNIT: "t0", s.TID: 0, s.THREAD: "MainThread", s.ARGV: ["app/main.py"],
        s.PYTHON: "3.12.0", s.WALL: 1.7e9, s.PARENT_PID: 1,
    }  # fmt: skip
    seq += 1
    produced += 1
    yield meta
    workers = [f"t{i}" for i in range(1, threads + 1)]
    for i in range(config_vars):
        ev("t0", s.Op.WRITE, "main", **{s.VAR: f"config[{i}]", s.VALUE: i})
    # with ``live``, the workers alive now (the others wait or are done)
    alive = workers[:live] if live is not None else workers
    for u in alive:
        ev("t0", s.Op.FORK, "main", **{s.OBJ: u, s.KIND: s.Kind.THREAD})
    for u in alive:
        ev(u, s.Op.BEGIN, "main", **{s.OBJ: u, s.KIND: s.Kind.THREAD})
    budget = max(1, n_events // threads)
    made: dict[str, int] = dict.fromkeys(workers, 0)
    upcoming = workers[len(alive) :]

    # A plan is a list of steps; a step is a callable-free tuple interpreted below.
    plans: dict[str, list[tuple[Any, ...]]] = {u: [] for u in workers}
    waiting: dict[str, bool] = dict.fromkeys(workers, False)
    lock_kind = {s.KIND: s.Kind.LOCK}

    def new_plan(u: str) -> list[tuple[Any, ...]]:
        t = rng.choices(task_names, task_weights)[0]
        if t == "racy_update" and racy:
            v = rng.randrange(racy)
            return [("read", v, "racy_read"), ("write", v, "racy_write")]
        v = rng.randrange(racy, variables) if variables > racy else 0
        lk = v % locks
        if t == "locked_update":
            return [
                ("acq", lk, "lock_acq"),
                ("read", v, "lock_read"),
                ("write", v, "lock_write"),
                ("rel", lk, "lock_rel"),
            ]
        if t == "locked_read":
            return [("acq", lk, "lread_acq"), ("read", v, "lread_read"), ("rel", lk, "lread_rel")]
        if t == "atomic_update":
            return [
                ("abegin", "transfer", "atom_begin"),
                ("acq", lk, "atom_acq"),
                ("read", v, "atom_read"),
                ("write", v, "atom_write"),
                ("rel", lk, "atom_rel"),
                ("aend", "transfer", "atom_end"),
            ]
        if t == "handoff":
            return [("send", 0, "send"), ("recv", 0, "recv")]
        if config_vars:
            return [("cread", rng.randrange(config_vars), "cfg_read")]
        return [("read", v, "cfg_read")]

    msg = 0
    while produced < n_events:
        if live is None:
            u = workers[rng.randrange(threads)]
        else:
            if not alive:
                break
            u = alive[rng.randrange(len(alive))]
            if made[u] >= budget and not plans[u] and u not in holder.values():
                # this request is done: the thread ends, main joins it, starts the next
                alive.remove(u)
                ev(u, s.Op.END, "main", **{s.OBJ: u, s.KIND: s.Kind.THREAD})
                yield from flush(u, force=True)
                ev("t0", s.Op.JOIN, "main", **{s.OBJ: u, s.KIND: s.Kind.THREAD})
                if upcoming:
                    nxt = upcoming.pop(0)
                    ev("t0", s.Op.FORK, "main", **{s.OBJ: nxt, s.KIND: s.Kind.THREAD})
                    ev(nxt, s.Op.BEGIN, "main", **{s.OBJ: nxt, s.KIND: s.Kind.THREAD})
                    alive.append(nxt)
                yield from flush("t0")
                continue
            made[u] += 1
        plan = plans[u]
        if not plan:
            plan.extend(new_plan(u))
        step = plan[0]
        what, arg, site = step
        if what == "acq":
            h = holder.get(arg)
            if h is not None and h != u:
                if not waiting[u]:
                    waiting[u] = True
                    ev(u, s.Op.ACQUIRE_TRY, site, **{s.OBJ: lock_names[arg]}, **lock_kind)
                continue
            holder[arg] = u
            wait = rng.randrange(1000, 50_000) if waiting[u] else 0
            waiting[u] = False
            ev(u, s.Op.ACQUIRE, site, **{s.OBJ: lock_names[arg], s.WAIT_NS: wait}, **lock_kind)
        elif what == "rel":
            ev(u, s.Op.RELEASE, site, **{s.OBJ: lock_names[arg]}, **lock_kind)
            del holder[arg]
        elif what == "read":
            ev(u, s.Op.READ, site, **{s.VAR: var_names[arg], s.VALUE: memory[arg]})
            plan.append(("_val", memory[arg], ""))  # remember what was read
        elif what == "cread":
            ev(u, s.Op.READ, site, **{s.VAR: f"config[{arg}]", s.VALUE: arg})
        elif what == "write":
            read_vals = [p[1] for p in plan if p[0] == "_val"]
            base = read_vals[-1] if read_vals else memory[arg]
            memory[arg] = base + 1
            ev(u, s.Op.WRITE, site, **{s.VAR: var_names[arg], s.VALUE: memory[arg]})
        elif what == "abegin":
            ev(u, s.Op.ATOMIC_BEGIN, site, **{s.OBJ: arg, s.KIND: s.Kind.ATOMIC})
        elif what == "aend":
            ev(u, s.Op.ATOMIC_END, site, **{s.OBJ: arg, s.KIND: s.Kind.ATOMIC})
        elif what == "send":
            msg += 1
            ev(u, s.Op.SEND, site, **{s.OBJ: "Queue@pipeline.py:5#1", s.KIND: s.Kind.QUEUE})
        elif what == "recv":
            ev(u, s.Op.RECV, site, **{s.OBJ: "Queue@pipeline.py:5#1", s.KIND: s.Kind.QUEUE})
        plan.pop(0)
        if plan and plan[0][0] == "_val" and all(p[0] == "_val" for p in plan):
            plan.clear()
        yield from flush(u)

    # Finish: release what is held, end the workers, join them.
    for u in alive:
        for lk, h in list(holder.items()):
            if h == u:
                ev(u, s.Op.RELEASE, "lock_rel", **{s.OBJ: lock_names[lk]}, **lock_kind)
                del holder[lk]
        ev(u, s.Op.END, "main", **{s.OBJ: u, s.KIND: s.Kind.THREAD})
        yield from flush(u, force=True)
    for u in alive:
        ev("t0", s.Op.JOIN, "main", **{s.OBJ: u, s.KIND: s.Kind.THREAD})
    yield from flush("t0", force=True)
    info.events = produced


def generate(
    path: str | Path,
    *,
    n_events: int,
    app_lines_every: int = 0,
    malformed_every: int = 0,
    truncate_last: bool = False,
    **kw: Any,
) -> GenInfo:
    """Write a synthetic trace to ``path`` (gzip when it ends in ``.gz``).

    Args:
        path: Output file.
        n_events: About how many events (see ``events``).
        app_lines_every: Insert an application log line (JSON without ``tl``) every
            this many events (0: none).
        malformed_every: Insert a non-JSON line every this many events (0: none).
        truncate_last: Cut the last line in half, as a killed process leaves it.
        **kw: Passed to ``events`` (threads, variables, locks, racy, seed, pid).

    Returns:
        Counts of what was written and the racy variable names.
    """
    info = GenInfo()
    path = Path(path)
    dumps = orjson.dumps
    opt = orjson.OPT_APPEND_NEWLINE
    chunk: list[bytes] = []
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wb") as out:
        for i, e in enumerate(events(n_events=n_events, info=info, **kw)):
            chunk.append(dumps(e, option=opt))
            if app_lines_every and i % app_lines_every == app_lines_every - 1:
                app = {"event": "request done", "level": "info", s.SEQ: e[s.SEQ], s.PID: e[s.PID]}
                chunk.append(dumps(app, option=opt))
                info.app_lines += 1
            if malformed_every and i % malformed_every == malformed_every - 1:
                chunk.append(b"Traceback (most recent call last): not json\n")
                info.malformed += 1
            if len(chunk) >= 65536:
                out.write(b"".join(chunk))
                chunk.clear()
        if truncate_last and chunk:
            last = chunk.pop()
            chunk.append(last[: len(last) // 2])
            info.malformed += 1
            info.events -= 1
        out.write(b"".join(chunk))
    info.lines = info.events + info.app_lines + info.malformed
    return info


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out")
    p.add_argument("--events", type=int, default=100_000)
    p.add_argument("--threads", type=int, default=16)
    p.add_argument("--variables", type=int, default=2000)
    p.add_argument("--locks", type=int, default=64)
    p.add_argument("--config-vars", type=int, default=0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--live", type=int, default=None, help="workers alive at once")
    a = p.parse_args(argv)
    info = generate(
        a.out, n_events=a.events, threads=a.threads, variables=a.variables, locks=a.locks,
        config_vars=a.config_vars, seed=a.seed, live=a.live,
    )  # fmt: skip
    print(f"{a.out}: {info.events} events, racy variables {info.racy_vars}")


if __name__ == "__main__":
    main()
