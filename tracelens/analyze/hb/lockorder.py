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
    after = {a: sorted(bs) for a, bs in succ.items()}
    # Each hop of a cycle is taken by another unit: no cycle has more locks than there
    # are units taking nested locks (with two, only pairs of locks: the search stays
    # quadratic in the locks, not a power of them as deep as ``max_cycle``).
    limit = min(options.max_cycle, len({e["unit"] for e in t.acquires}))
    hops = _Hops(edges)

    cycles: list[tuple[list[str], list[dict[str, Any]]]] = []
    for start in sorted(succ):
        # Simple cycles whose smallest lock is ``start``: each found once.
        stack: list[tuple[str, list[str]]] = [(start, [start])]
        while stack:
            node, path = stack.pop()
            if len(path) > 1 and start in succ[node]:  # (``start`` sorts first)
                chosen = hops.pick(path)
                if chosen is not None:
                    cycles.append((path, chosen))
            if len(path) >= limit:
                continue
            for nxt in after.get(node, ()):
                if nxt > start and nxt not in path:
                    stack.append((nxt, [*path, nxt]))
    if not cycles:
        return empty_findings()

    gs = sorted({e[k] for _, ch in cycles for e in ch for k in ("ga", "gb")})
    det = details_at(events, gs)
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


class _Hops:
    """The edge instances of each hop, and the choice of one per hop for a cycle."""

    def __init__(self, edges: dict[tuple[str, str], list[dict[str, Any]]]) -> None:
        self.edges = edges
        self._sorted: dict[tuple[str, str], list[tuple[dict[str, Any], int]]] = {}
        self._bit: dict[str, int] = {}
        self._masks: dict[int, int] = {}  # id of a held list -> its locks as bits

    def _mask(self, held: list[str]) -> int:
        m = self._masks.get(id(held))
        if m is None:
            m = 0
            for lk in held:
                m |= self._bit.setdefault(lk, 1 << len(self._bit))
            self._masks[id(held)] = m
        return m

    def _options(self, hop: tuple[str, str]) -> list[tuple[dict[str, Any], int]]:
        got = self._sorted.get(hop)
        if got is None:
            es = self.edges[hop]
            if len(es) > 1:
                es = sorted(es, key=lambda e: e["gb"])
            got = self._sorted[hop] = [(e, self._mask(e["held"])) for e in es]
        return got

    def pick(self, path: list[str]) -> list[dict[str, Any]] | None:
        """Edge instances for the cycle: pairwise different units, disjoint held sets
        (the first such choice, each hop's instances in acquire order)."""
        options = [self._options((path[i], path[(i + 1) % len(path)])) for i in range(len(path))]

        def go(
            i: int, chosen: list[dict[str, Any]], units: tuple[Any, ...], held: int
        ) -> list[dict[str, Any]] | None:
            if i == len(options):
                return chosen
            for e, m in options[i]:
                if e["unit"] in units or m & held:
                    continue
                got = go(i + 1, [*chosen, e], (*units, e["unit"]), held | m)
                if got is not None:
                    return got
            return None

        return go(0, [], (), 0)
