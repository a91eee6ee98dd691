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
    detail_columns,
    empty_findings,
    event_row,
    site_row,
    who,
)
from tracelens.analyze.hb.shared import Tables
from tracelens.analyze.kinds import KINDS
from tracelens.analyze.options import DEFAULT, Options

__all__ = ["KIND", "deadlock"]

KIND: Final = "deadlock"


def deadlock(t: Tables, events: pl.LazyFrame, /, *, options: Options = DEFAULT) -> pl.DataFrame:
    """Find wait-for cycles among the units blocked at the end of the trace.

    Args:
        t: The shared pass over ``events`` (``shared.tables``: the final lock holders).
        events: The loaded trace (``Trace.events``).
        options: Unused: deadlocks have no tuning.

    Returns:
        ``FINDING_SCHEMA`` rows of kind ``deadlock`` (severity ``error``), one per
        cycle: ``var`` names the objects waited for, ``events`` gives per unit where
        it took what the next unit waits for and where it blocked.
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
    det = {
        r[G]: r
        for r in events.select(detail_columns())
        .filter(pl.col(G).is_in(gs))
        .collect()
        .iter_rows(named=True)
    }
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
