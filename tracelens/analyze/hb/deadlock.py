"""Deadlocks that happened: units blocked at the end of the trace, waiting on each other.

A unit is blocked at the end of the trace when its last lock event is an
``acquire_try`` (no ``acquire`` or ``acquire_fail`` followed), or when its very last
event is a ``wait`` (a join, an event, a queue...). A blocked unit waits for the unit
holding the lock it tries, or for the unit it joins. A cycle in that wait-for graph
is a deadlock; a unit that tries a (non re-entrant) lock it holds itself is a cycle
of one.

Blocked units and their last events are found in polars; the final lock holders
come from the shared pass over synchronisation events (``shared.tables``); the wait-for graph has
at most one edge per unit, so the cycles are found in Python.
"""

from __future__ import annotations

from typing import Any, Final

import polars as pl

from tracelens import schema as s
from tracelens.analyze import columns as c
from tracelens.analyze.columns import OP, G, global_order
from tracelens.analyze.findings import (
    FINDING_SCHEMA,
    details_at,
    empty_findings,
    event_row,
    site_row,
    who,
)
from tracelens.analyze.hb.shared import Tables
from tracelens.analyze.kinds import KINDS
from tracelens.analyze.options import DEFAULT, Options

__all__ = ["HANG", "KIND", "deadlock", "hang"]

KIND: Final = "deadlock"
HANG: Final = "hang"
LOCK_ORDER_INVERSION: Final = "lock_order_inversion"


def deadlock(t: Tables, events: pl.LazyFrame, /, *, options: Options = DEFAULT) -> pl.DataFrame:
    """Find wait-for cycles among the units blocked at the end of the trace.

    Args:
        t: The shared pass over ``events`` (``shared.tables``: the final lock holders).
        events: The loaded trace (``Trace.events``).
        options: Unused: deadlocks have no tuning.

    Returns:
        ``FINDING_SCHEMA`` rows of kind ``deadlock`` (severity ``error``), one per
        cycle, each after the ``lock_order_inversion`` behind it when every unit of
        the cycle waits on a lock (``_inversion``): ``var`` names the objects waited
        for, ``events`` gives per unit where it took what the next unit waits for and
        where it blocked.
    """
    # Nothing can be blocked without an ``acquire_try`` or a ``wait``: one cheap scan of
    # the operations spares the per-unit group-bys over the whole trace (most traces).
    op = pl.col(OP).cast(pl.String)
    may_block = events.select(op.is_in([s.Op.ACQUIRE_TRY, s.Op.WAIT]).any()).collect().item()
    if not may_block:
        return empty_findings()
    ev = events.select(global_order(), pl.col(c.UNIT), op, pl.col(c.OBJ))
    lock_ops = [s.Op.ACQUIRE_TRY, s.Op.ACQUIRE, s.Op.ACQUIRE_FAIL]
    # The events are in trace order (sorted by pid, seq): a unit's last event of a kind
    # is its last row of that kind.
    last = pl.col(c.UNIT).is_last_distinct()
    last_lock = (
        ev.filter(pl.col(OP).is_in(lock_ops)).filter(last).filter(pl.col(OP) == s.Op.ACQUIRE_TRY)
    )
    last_any = ev.filter(last)
    last_wait = last_any.filter(pl.col(OP) == s.Op.WAIT)
    ended = ev.filter(pl.col(OP) == s.Op.END).select(c.UNIT).unique()
    blocked_df, ended_df = pl.collect_all([pl.concat([last_lock, last_wait]).sort(G), ended])
    if blocked_df.height == 0:
        return empty_findings()
    done = set(ended_df[c.UNIT].to_list())

    # unit -> (G of the blocking event, object, next unit, G of the next unit's acquire)
    waits: dict[str, tuple[int, str, str, int | None]] = {}
    for r in blocked_df.iter_rows(named=True):
        waiter, obj = r[c.UNIT], r[c.OBJ]
        if r[OP] == s.Op.ACQUIRE_TRY:
            h = t.holders.get(obj)
            if h is not None:
                waits.setdefault(waiter, (r[G], obj, h[0], h[1]))
        elif obj is not None and obj not in done and obj != waiter:
            waits.setdefault(waiter, (r[G], obj, obj, None))

    cycles: list[list[str]] = []
    seen: set[str] = set()
    for start in sorted(waits):
        path: list[str] = []
        u: str | None = start
        while u is not None and u in waits and u not in path and u not in seen:
            path.append(u)
            u = waits[u][2]
        seen.update(path)
        if u is not None and u in path:
            cyc = path[path.index(u) :]
            k = cyc.index(min(cyc))
            cycles.append(cyc[k:] + cyc[:k])
    if not cycles:
        return empty_findings()

    gs = sorted({g for c in cycles for u in c for g in (waits[u][0], waits[u][3]) if g is not None})
    det = details_at(events, gs)
    rows: list[dict[str, Any]] = []
    for cyc in cycles:
        evs, sites, units, parts, objs = [], [], [], [], []
        for i, u in enumerate(cyc):
            g_block, obj, nxt, _ = waits[u]
            prev = cyc[i - 1]
            held_g = waits[prev][3]  # where u took what the previous unit waits for
            if held_g is not None and held_g in det:
                d = det[held_g]
                evs.append(event_row(d, f"holds {waits[prev][1]}", []))
                sites.append(site_row(d))
            d = det[g_block]
            evs.append(event_row(d, f"blocks on {obj}", []))
            sites.append(site_row(d))
            units.append(d["unit_name"])
            objs.append(obj)
            what = "waits for" if d[OP] == s.Op.WAIT else "blocks acquiring"
            nd = det.get(waits[nxt][0])
            parts.append(
                f"{who(d)} {what} {obj} at {d['file']}:{d['line']}"
                + (f", held by {who(nd)}" if nd is not None and d[OP] != s.Op.WAIT else "")
            )
        inversion = _inversion(cyc, waits, det)
        if inversion is not None:
            rows.append(inversion)
        rows.append(
            {
                "kind": KIND,
                "severity": KINDS[KIND].severity,
                "var": ", ".join(objs),
                "units": units,
                "sites": sites,
                "count": 1,
                "events": evs,
                "worst": evs,
                "explanation": "; ".join(parts) + ": the run hung here (deadlock)",
            }
        )
    return pl.DataFrame(rows, schema=FINDING_SCHEMA)


def _inversion(
    cyc: list[str], waits: dict[str, tuple[int, str, str, int | None]], det: dict[int, Any]
) -> dict[str, Any] | None:
    """The lock-order inversion behind a deadlock of lock waits (ThreadSanitizer reports
    both): each unit held the lock the previous one tries, and tried the next one's.

    The lock-order analysis sees only acquires that succeeded, and in a deadlock the
    nested ones never do; ``None`` when a unit of the cycle waits on something else, or
    for a unit that tries a lock it holds itself (no order between two locks).
    """
    if len(cyc) < 2:
        return None
    hops = []
    for i, u in enumerate(cyc):
        g_try, tried, _nxt, _ = waits[u]
        prev = cyc[i - 1]
        held, held_g = waits[prev][1], waits[prev][3]
        d_try = det.get(g_try)
        d_held = det.get(held_g) if held_g is not None else None
        if d_try is None or d_held is None or d_try[OP] != s.Op.ACQUIRE_TRY:
            return None
        hops.append((held, tried, d_held, d_try))
    k = min(range(len(hops)), key=lambda i: hops[i][0])
    hops = hops[k:] + hops[:k]
    evs, sites, units, parts = [], [], [], []
    for held, tried, d_held, d_try in hops:
        evs.append(event_row(d_held, f"holds {held}", [held]))
        evs.append(event_row(d_try, f"then acquires {tried}", [held]))
        sites += [site_row(d_held), site_row(d_try)]
        units.append(d_try["unit_name"])
        parts.append(
            f"{who(d_try)} acquires {tried} at {d_try['file']}:{d_try['line']} while holding "
            f"{held} (taken at {d_held['file']}:{d_held['line']})"
        )
    path = [h[0] for h in hops]
    return {
        "kind": LOCK_ORDER_INVERSION,
        "severity": KINDS[LOCK_ORDER_INVERSION].severity,
        "var": " -> ".join([*path, path[0]]),
        "units": units,
        "sites": sites,
        "count": 1,
        "events": evs,
        "worst": evs,
        "explanation": "; ".join(parts) + ": these deadlocked in this run (lock order inversion)",
    }


def hang(t: Tables, events: pl.LazyFrame, /, *, options: Options = DEFAULT) -> pl.DataFrame:
    """Runs that hung with no lock cycle: every unit still alive at the end was blocked.

    Per process: every unit that did not end has a blocking event as its last event of
    its own (a ``wait`` with no completion after it, or an ``acquire_try``; the locks a
    primitive takes for itself, ``internal``, do not count) - the main thread records no
    ``end``, so a finished program, whose main thread's last event is not a wait, is
    never a hang, whatever daemon threads still wait - and at least one waits on a condition, event,
    queue, semaphore, barrier or unit rather than on a lock (a lock cycle is a
    ``deadlock``). One finding per process: each blocked unit's wait and the event it
    recorded before it.

    Args:
        t: The shared pass (unused: the holders do not matter for a hang).
        events: The loaded trace.
        options: Unused.
    """
    op = pl.col(OP).cast(pl.String)
    if not events.select(op.is_in([s.Op.WAIT]).any()).collect().item():
        return empty_findings()
    # A primitive's own locks (the Condition inside an Event's wait) come after the
    # wait it records: a unit's state is its last event of the program's own.
    ev = events.filter(~pl.col(c.INTERNAL).fill_null(False)).select(
        global_order(),
        pl.col(c.PID),
        pl.col(c.UNIT),
        pl.col(c.TID),
        pl.col(c.UNIT_NAME),
        op,
        pl.col(c.OBJ),
        pl.col(c.KIND).cast(pl.String).fill_null("").alias("_kind"),
    )
    task_fork = (pl.col(OP) == s.Op.FORK) & (pl.col("_kind") == s.Kind.TASK)
    per_unit = (
        ev.group_by(c.PID, c.UNIT)
        .agg(
            pl.col(G).sort().last().alias("last_g"),
            pl.col(OP).sort_by(G).last().alias("last_op"),
            pl.col("_kind").sort_by(G).last().alias("last_kind"),
            pl.col(G).sort().slice(-2, 1).first().alias("prev_g"),
            (pl.col(OP) == s.Op.END).any().alias("ended"),
            pl.col(c.TID).first().alias("_tid"),
            pl.col(c.UNIT_NAME).sort_by(G).last().alias("_name"),
            pl.col(c.OBJ)
            .filter(task_fork)
            .sort_by(pl.col(G).filter(task_fork))
            .last()
            .alias("_last_task"),
        )
        .collect()
    )
    rows: list[dict[str, Any]] = []
    for _pid, group in per_unit.group_by([c.PID], maintain_order=True):
        alive = group.filter(~pl.col("ended"))
        blocked = _blocked(alive)
        if alive.height == 0 or not all(blocked.values()):
            continue
        waiting = alive.filter(pl.col(c.UNIT).is_in([u for u, b in blocked.items() if b is True]))
        on_signal = waiting.filter(
            (pl.col("last_op") == s.Op.WAIT) & ~pl.col("last_kind").is_in(_UNIT_KINDS)
        )
        if on_signal.height == 0:
            continue  # only joins of units blocked on locks: a deadlock's
        loops = alive.filter(pl.col(c.UNIT).is_in([u for u, b in blocked.items() if b == _LOOP]))
        rows.append(_hang_row(waiting, events, loops))
    if not rows:
        return empty_findings()
    return pl.DataFrame(rows, schema=FINDING_SCHEMA)


#: Kinds of objects a ``wait`` on which is a join (a lock cycle under it is a deadlock).
_UNIT_KINDS: Final = [s.Kind.THREAD, s.Kind.TASK, s.Kind.PROCESS]


#: ``_blocked``'s mark of a thread that runs an event loop all of whose tasks wait.
_LOOP: Final = "loop"


def _blocked(alive: pl.DataFrame) -> dict[str, bool | str]:
    """Each live unit of one process: ``True`` when it is blocked (its last event a
    ``wait`` or an ``acquire_try``), ``_LOOP`` for a thread running an event loop that
    is stuck, else ``False``.

    A thread's tasks are the live task units recorded on its thread id. While its loop
    runs, the thread records nothing of its own (its last event is a task's ``fork``):
    it is stuck when it has live tasks, every one of them blocked, and the last task it
    created itself (the one ``asyncio.run`` or ``run_until_complete`` runs) is among
    them - a loop whose main task ended has returned, whatever tasks it left pending.
    """
    blocking = (s.Op.WAIT, s.Op.ACQUIRE_TRY)
    out: dict[str, bool | str] = {}
    tasks: dict[Any, list[str]] = {}
    for r in alive.iter_rows(named=True):
        out[r[c.UNIT]] = r["last_op"] in blocking
        if c.is_task_unit(r[c.UNIT]):
            tasks.setdefault(r["_tid"], []).append(r[c.UNIT])
    for r in alive.iter_rows(named=True):
        unit = r[c.UNIT]
        mine = tasks.get(r["_tid"], [])
        if out[unit] or c.is_task_unit(unit) or not mine:
            continue
        last = r["_last_task"]
        if last is not None and last in mine and all(out[u] is True for u in mine):
            out[unit] = _LOOP
    return out


def _hang_row(
    alive: pl.DataFrame, events: pl.LazyFrame, loops: pl.DataFrame | None = None
) -> dict[str, Any]:
    gs = [g for g in (*alive["last_g"].to_list(), *alive["prev_g"].to_list()) if g is not None]
    det = details_at(events, gs)
    evs, sites, units, objs, parts = [], [], [], [], []
    for r in alive.sort("last_g").iter_rows(named=True):
        d = det[r["last_g"]]
        before = det.get(r["prev_g"]) if r["prev_g"] != r["last_g"] else None
        if before is not None:
            evs.append(event_row(before, "last event before", []))
        evs.append(event_row(d, f"waits on {d['target']}", []))
        sites.append(site_row(d))
        units.append(d["unit_name"])
        objs.append(str(d["target"]))
        parts.append(f"{who(d)} waits on {d['target']} at {d['file']}:{d['line']}")
    stuck = ""
    if loops is not None and loops.height:
        names = [f"thread {n or u}" for u, n in loops.select(c.UNIT, "_name").iter_rows()]
        stuck = f"; the event loop of {', '.join(names)} had no task that could run"
    return {
        "kind": HANG,
        "severity": KINDS[HANG].severity,
        "var": ", ".join(dict.fromkeys(objs)),
        "units": units,
        "sites": sites,
        "count": 1,
        "events": evs,
        "worst": evs,
        "explanation": "; ".join(parts)
        + ": every unit still running was waiting, so nothing could signal them (the run hung)"
        + stuck,
    }
