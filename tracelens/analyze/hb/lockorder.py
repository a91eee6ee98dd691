"""Lock-order inversions: cycles in the lock-order graph (Goodlock, lockdep, TSan).

An edge A -> B is recorded when a unit acquires B while it holds A, with the set of
locks it held then and the sites of both acquires. A cycle of edges taken by
pairwise different units whose held sets are pairwise disjoint (no common *gate*
lock that keeps them apart) can deadlock in another run, even when this one did not.
Re-entrant acquires of an RLock are not edges (the recorder records only the
outermost acquire; a lock already held by the unit is skipped here too).

The edges come from the shared pass over synchronisation events
(``tracelens.analyze.hb.shared.tables``): one row per distinct nested acquire (unit,
lock taken, set held before it), whose held set gives its edges, one per other lock
held. A unit holding ``d`` locks at once makes ``d^2 / 2`` edges, and every pair of
locks two units take in opposite orders is a candidate two-lock cycle, so the
two-lock cycles are a join in polars: the edges ``a -> b`` with the edges ``b -> a``
of another unit, the pairs whose held sets share no lock (checked once per pair of
held sets, as bit masks), the first such pair by acquire order. Longer cycles need
three units or more taking nested locks; their search runs in Python, depth-first from
each acquire of a cycle's smallest lock, over the links between nested acquires (one's
lock held by the next, other units, disjoint held sets) that polars finds.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Final

import polars as pl

from tracelens.analyze.columns import G
from tracelens.analyze.findings import (
    FINDING_SCHEMA,
    MAX_LISTED_LOCKS,
    details_at,
    empty_findings,
    event_struct,
    site_struct,
    who,
)
from tracelens.analyze.hb.clocks import U
from tracelens.analyze.hb.locksets import LOCK, Held, apart_masks
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
    h = t.held
    nested = h.nested.with_row_index("_r").with_columns(pl.col("_r").cast(pl.Int64))
    # Each hop of a cycle is taken by another unit: no cycle has more locks than there
    # are units taking nested locks.
    limit = min(options.max_cycle, nested[U].n_unique())
    if limit < 2:
        return empty_findings()
    # locks by name: a cycle starts at its smallest lock
    order = sorted(range(len(h.names)), key=h.names.__getitem__)
    rank = [0] * len(order)
    for r, i in enumerate(order):
        rank[i] = r
    ranks = pl.Series("_rank", rank, dtype=pl.Int64)
    # one row per edge instance: the nested acquire of ``_b`` and another lock held
    # (lazy: each search takes the columns it needs; a unit holding d locks at once
    # makes d^2 / 2 of them)
    edges = (
        nested.lazy()
        .join(h.members.lazy().rename({LOCK: "_a"}), on="ls")
        .filter(pl.col("_a") != pl.col("_b"))
        .select("_r", U, "_a", "_b", "ls", "gb")
    )
    found = _two_lock_cycles(edges, ranks, h.masks)
    if limit > 2:
        found += _longer_cycles(nested, h.members, rank, h.masks, limit)
    if not found:
        return empty_findings()
    # by the earliest acquire chosen, then in the order of a depth-first search from
    # each smallest lock that visits the greater locks in descending name order
    gb = nested["gb"].to_list()
    found.sort(key=lambda f: (min(gb[r] for r in f[1]), f[0]))
    inst = _instances(nested, h, found)
    cycles: list[tuple[list[str], list[dict[str, Any]]]] = []
    unit_name = dict(zip(t.units[U].to_list(), t.units["unit"].to_list(), strict=True))
    for key, picked in found:
        names = [h.names[order[x]] for x in _path_locks(key)]
        chosen_edges = []
        for i, r in enumerate(picked):
            e = dict(inst[(r, names[i])])
            e["unit"] = unit_name[e["unit"]]
            e["b"] = names[(i + 1) % len(names)]
            chosen_edges.append(e)
        cycles.append((names, chosen_edges))

    gs = sorted({e[k] for _, ch in cycles for e in ch for k in ("ga", "gb")})
    det = details_at(events, gs)
    # the rows' events as one flat frame (a row per event: which finding, ``G``, role,
    # held set), made into lists of structs in polars: a unit holding d locks at once
    # makes events that list d^2 locks in all, too many for Python objects
    at_f: list[int] = []
    at_g: list[int] = []
    roles: list[str] = []
    held_at: list[int] = []
    cols: dict[str, list[Any]] = {k: [] for k in ("var", "units", "count", "explanation")}
    for f, (path, chosen) in enumerate(cycles):
        units, parts = [], []
        for e in chosen:
            da, db = det[e["ga"]], det[e["gb"]]
            at_f += [f, f]
            at_g += [e["ga"], e["gb"]]
            roles += [f"holds {e['a']}", f"then acquires {e['b']}"]
            held_at += [e["ls"], e["ls"]]
            units.append(db["unit_name"])
            parts.append(
                f"{who(db)} acquires {e['b']} at {db['file']}:{db['line']} while holding "
                f"{e['a']} (taken at {da['file']}:{da['line']})"
            )
        cols["var"].append(" -> ".join([*path, path[0]]))
        cols["units"].append(units)
        cols["count"].append(min(e["n"] for e in chosen))
        cols["explanation"].append(
            "; ".join(parts) + ": run at the same time, these can deadlock (lock order inversion)"
        )
    flat = pl.DataFrame(
        {"_f": at_f, G: at_g, "role": roles, "ls": held_at},
        schema={"_f": pl.Int64, G: pl.Int64, "role": pl.String, "ls": pl.Int64},
    )
    details = pl.DataFrame(list(det.values()))
    # (the first ``MAX_LISTED_LOCKS`` of each held set, and how many it has)
    held = t.locksets.filter(pl.col("ls").is_in(sorted(set(held_at)))).select(
        "ls", pl.col("locks").list.head(MAX_LISTED_LOCKS), pl.col("locks").list.len().alias("_n")
    )
    flat = flat.join(details, on=G, how="left", maintain_order="left").join(
        held, on="ls", how="left", maintain_order="left"
    )
    lists = flat.group_by("_f", maintain_order=True).agg(
        event_struct("", pl.col("role"), lock_count=pl.col("_n")).alias("events"),
        site_struct("").alias("sites"),
    )
    frame = pl.DataFrame(
        {
            "kind": [KIND] * len(cycles),
            "severity": [KINDS[KIND].severity] * len(cycles),
            **cols,
            "sites": lists["sites"],
            "events": lists["events"],
            "worst": lists["events"],
        }
    )
    return frame.select(pl.col(k).cast(v) for k, v in FINDING_SCHEMA.items())


def _path_locks(key: tuple[int, ...]) -> list[int]:
    """The locks (by name rank) of a cycle's sort key: the first, then the others negated."""
    return [key[0], *(-x for x in key[1:])]


def _two_lock_cycles(
    edges: pl.LazyFrame, ranks: pl.Series, masks: list[int]
) -> list[tuple[tuple[int, ...], list[int]]]:
    """The two-lock cycles ``a -> b -> a`` (``a`` the smaller by name) that two units with
    disjoint held sets take: per pair, the first such choice (``a -> b``'s instance
    first in acquire order, then ``b -> a``'s); as ``(sort key, nested rows)``."""
    # a lock pair, and a pair of held sets, as one Int64 key (joins and uniques on one
    # column are the fast ones); the nested rows ``_r`` are in acquire order
    n, n_sets = ranks.len(), len(masks)
    e = edges.select(
        "_r",
        U,
        "ls",
        pl.lit(ranks).gather(pl.col("_a")).alias("_ra"),
        pl.lit(ranks).gather(pl.col("_b")).alias("_rb"),
    )
    fwd = e.filter(pl.col("_ra") < pl.col("_rb")).with_columns(
        (pl.col("_ra") * n + pl.col("_rb")).alias("_k")
    )
    back = e.filter(pl.col("_ra") > pl.col("_rb")).select(
        pl.col("_r").alias("_r2"),
        pl.col(U).alias("_u2"),
        pl.col("ls").alias("_ls2"),
        (pl.col("_rb") * n + pl.col("_ra")).alias("_k"),
    )
    pairs = (
        fwd.join(back, on="_k")
        .filter(pl.col(U) != pl.col("_u2"))
        .select("_ra", "_rb", "_r", "_r2", (pl.col("ls") * n_sets + pl.col("_ls2")).alias("_s"))
        .collect()
    )
    if pairs.height == 0:
        return []
    sets = pairs.select(pl.col("_s").unique()).with_columns(
        (pl.col("_s") // n_sets).alias("ls"), (pl.col("_s") % n_sets).alias("_ls2")
    )
    # each pair of held sets checked once, as bit masks
    sets = apart_masks(sets, "ls", "_ls2", masks)
    first = (
        pairs.join(sets.select("_s"), on="_s", how="semi")
        .sort("_r", "_r2")
        .group_by("_ra", "_rb", maintain_order=True)
        .first()
    )
    return [
        ((ra, -rb), [r1, r2])
        for ra, rb, r1, r2 in first.select("_ra", "_rb", "_r", "_r2").iter_rows()
    ]


def _longer_cycles(
    nested: pl.DataFrame, members: pl.DataFrame, rank: list[int], masks: list[int], limit: int
) -> list[tuple[tuple[int, ...], list[int]]]:
    """The cycles of three locks up to ``limit`` (``_two_lock_cycles`` has the others).

    A cycle of ``k`` locks is ``k`` nested acquires (rows of ``nested``) by pairwise
    different units with pairwise disjoint held sets, each one's lock held by the next
    one. Those *links* between two nested acquires (the first's lock in the second's
    held set, other units, disjoint sets) are found in polars; the search then walks
    only them, depth-first from each acquire of a cycle's smallest lock, so that held
    sets that overlap (nested locks: most pairs) cut it short. Per cycle of locks, the
    first choice of acquires (the least in acquire order hop by hop, as the oracle
    picks it), as ``(sort key, nested rows)``.
    """
    n_sets = len(masks)
    acq = nested.lazy().select("_r", U, "_b", "ls")
    links = (
        acq.select(pl.col("_r").alias("_r1"), "_b", pl.col("ls").alias("_ls1"))
        .join(members.lazy().rename({LOCK: "_b", "ls": "_ls2"}), on="_b")
        .join(
            acq.select(
                pl.col("_r").alias("_r2"),
                pl.col(U).alias("_u2"),
                pl.col("_b").alias("_b2"),
                pl.col("ls").alias("_ls2"),
            ),
            on="_ls2",
        )
        .join(acq.select(pl.col("_r").alias("_r1"), pl.col(U).alias("_u1")), on="_r1")
        .filter((pl.col("_u1") != pl.col("_u2")) & (pl.col("_b") != pl.col("_b2")))
        .select("_r1", "_r2", (pl.col("_ls1") * n_sets + pl.col("_ls2")).alias("_s"))
        .collect()
    )
    if links.height == 0:
        return []
    sets = links.select(pl.col("_s").unique()).with_columns(
        (pl.col("_s") // n_sets).alias("ls"), (pl.col("_s") % n_sets).alias("_ls2")
    )
    links = links.join(apart_masks(sets, "ls", "_ls2", masks).select("_s"), on="_s", how="semi")
    succ: dict[int, list[int]] = defaultdict(list)
    for r1, r2 in links.select("_r1", "_r2").sort("_r1", "_r2").iter_rows():
        succ[r1].append(r2)
    lock = nested["_b"].to_list()
    unit = nested[U].to_list()
    held = [masks[ls] for ls in nested["ls"].to_list()]
    best: dict[tuple[int, ...], list[int]] = {}
    for s in sorted(succ):
        # ``s`` takes the cycle's smallest lock (while holding the last one's lock)
        x0 = rank[lock[s]]
        stack: list[tuple[tuple[int, ...], frozenset[int], int]] = [
            ((s,), frozenset((unit[s],)), held[s])
        ]
        while stack:
            path, units, union = stack.pop()
            last = path[-1]
            if len(path) >= 3 and held[s] >> lock[last] & 1:
                key = (x0, *(-rank[lock[r]] for r in path[1:]))
                chosen = [*path[1:], s]  # hop by hop, from the smallest lock
                if key not in best or chosen < best[key]:
                    best[key] = chosen
            if len(path) >= limit:
                continue
            for nxt in succ.get(last, ()):
                if (
                    rank[lock[nxt]] > x0
                    and unit[nxt] not in units
                    and not held[nxt] & union
                    and all(lock[r] != lock[nxt] for r in path)
                ):
                    stack.append(((*path, nxt), units | {unit[nxt]}, union | held[nxt]))
    return list(best.items())


def _instances(
    nested: pl.DataFrame,
    h: Held,
    found: list[tuple[tuple[int, ...], list[int]]],
) -> dict[tuple[int, str], dict[str, Any]]:
    """The chosen instances as edges: ``(row, a's name)`` -> ``unit`` (id), ``a``,
    ``ls`` (the held set), ``ga`` (the unit's latest acquire of ``a`` before), ``gb``, ``n``."""
    # which held lock each chosen row stands for, per cycle hop
    wanted: list[tuple[int, int]] = []
    order = sorted(range(len(h.names)), key=h.names.__getitem__)
    for key, rs in found:
        locks = _path_locks(key)
        wanted += [(r, order[locks[i]]) for i, r in enumerate(rs)]
    want = pl.DataFrame(wanted, schema={"_r": pl.Int64, "_a": pl.Int64}, orient="row").unique()
    got = (
        want.join(nested, on="_r")
        .sort("gb")
        .join_asof(
            h.acquires.rename({LOCK: "_a", G: "ga"}),
            left_on="gb",
            right_on="ga",
            by=[U, "_a"],
            allow_exact_matches=False,
            check_sortedness=False,
        )
    )
    return {
        (r, h.names[a]): {
            "unit": u,
            "a": h.names[a],
            "ls": ls,
            "ga": ga,
            "gb": gb,
            "n": n,
        }
        for r, a, u, ls, gb, n, ga in got.select("_r", "_a", U, "ls", "gb", "n", "ga").iter_rows()
    }
