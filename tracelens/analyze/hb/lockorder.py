"""Lock-order inversions: cycles in the lock-order graph (Goodlock, lockdep, TSan).

An edge A -> B is recorded when a unit acquires B while it holds A, with the set of
locks it held then and the sites of both acquires. A cycle of edges taken by
pairwise different units whose held sets are pairwise disjoint (no common *gate*
lock that keeps them apart) can deadlock in another run, even when this one did not.
Re-entrant acquires of an RLock are not edges (the recorder records only the
outermost acquire; a lock already held by the unit is skipped here too).

The edges come from the shared pass over synchronisation events
(``tracelens.analyze.hb.shared.tables``, which tracks held locks); the graph is small
(distinct lock pairs), so the cycle search runs in Python over it.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Final

import polars as pl

from tracelens.analyze.columns import G
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

__all__ = ["KIND", "lock_order_inversion"]

KIND: Final = "lock_order_inversion"


def lock_order_inversion(
    t: Tables, events: pl.LazyFrame, /, *, options: Options = DEFAULT
) -> pl.DataFrame:
    """Find cycles in the lock-order graph that different units could close.

    Args:
        t: The shared pass over ``events`` (``shared.tables``; its nested acquires
            include internal locks when ``Options.internal_locks`` is on).
        events: The loaded trace (``Trace.events``).
        options: ``max_cycle``, the longest cycle (number of locks) searched for.

    Returns:
        ``FINDING_SCHEMA`` rows of kind ``lock_order_inversion`` (severity ``error``):
        one per cycle of locks; ``var`` is the cycle (``"A -> B -> A"``), ``sites``
        the two acquire sites of every edge, ``events`` the acquires themselves.
    """
    if not t.acquires:
        return empty_findings()
    edges: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for e in t.acquires:
        edges[(e["a"], e["b"])].append(e)
    succ: dict[str, set[str]] = defaultdict(set)
    for a, b in edges:
        succ[a].add(b)

    cycles: list[tuple[list[str], list[dict[str, Any]]]] = []
    for start in sorted(succ):
        # Simple cycles whose smallest lock is ``start``: each found once.
        stack: list[tuple[str, list[str]]] = [(start, [start])]
        while stack:
            node, path = stack.pop()
            for nxt in sorted(succ.get(node, ())):
                if nxt == start and len(path) > 1:
                    chosen = _pick(path, edges)
                    if chosen is not None:
                        cycles.append((path, chosen))
                elif nxt > start and nxt not in path and len(path) < options.max_cycle:
                    stack.append((nxt, [*path, nxt]))
    if not cycles:
        return empty_findings()

    gs = sorted({e[k] for _, ch in cycles for e in ch for k in ("ga", "gb")})
    det = {
        r[G]: r
        for r in events.select(detail_columns())
        .filter(pl.col(G).is_in(gs))
        .collect()
        .iter_rows(named=True)
    }
    rows = []
    for path, chosen in sorted(cycles, key=lambda c: min(e["gb"] for e in c[1])):
        evs, sites, units, parts = [], [], [], []
        for e in chosen:
            da, db = det[e["ga"]], det[e["gb"]]
            evs.append(event_row(da, f"holds {e['a']}", e["held"]))
            evs.append(event_row(db, f"then acquires {e['b']}", e["held"]))
            sites += [site_row(da), site_row(db)]
            units.append(db["unit_name"])
            parts.append(
                f"{who(db)} acquires {e['b']} at {db['file']}:{db['line']} while holding "
                f"{e['a']} (taken at {da['file']}:{da['line']})"
            )
        count = min(e["n"] for e in chosen)
        rows.append(
            {
                "kind": KIND,
                "severity": KINDS[KIND].severity,
                "var": " -> ".join([*path, path[0]]),
                "units": units,
                "sites": sites,
                "count": count,
                "events": evs,
                "worst": evs,
                "explanation": "; ".join(parts)
                + ": run at the same time, these can deadlock (lock order inversion)",
            }
        )
    return pl.DataFrame(rows, schema=FINDING_SCHEMA)


def _pick(path: list[str], edges: dict[tuple[str, str], list[dict[str, Any]]]) -> Any:
    """Edge instances for the cycle: pairwise different units, disjoint held sets."""
    hops = [(path[i], path[(i + 1) % len(path)]) for i in range(len(path))]
    options = [sorted(edges[h], key=lambda e: e["gb"]) for h in hops]

    def go(i: int, chosen: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
        if i == len(options):
            return chosen
        for e in options[i]:
            if any(e["unit"] == c["unit"] or set(e["held"]) & set(c["held"]) for c in chosen):
                continue
            got = go(i + 1, [*chosen, e])
            if got is not None:
                return got
        return None

    return go(0, [])
