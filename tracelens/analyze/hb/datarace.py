"""Happens-before data races: FastTrack's checks as joins over the access table.

Two accesses to one variable race when they come from different units, at least one
is a write, and neither happens before the other. The shared pass (``shared.tables``)
gives every access its unit's epoch; the FastTrack checks are then joins over the
accesses:

* an access against the last plain write before it (write-read, write-write), and
* a read or commuting write against the next plain write after it (read-write: the
  reads a write must check are exactly the reads whose next write it is),
* on a variable with commuting writes (``schema.Kind.COMMUTING``: they conflict with
  reads and plain writes, not with each other), a read against the commuting writes
  before it and a commuting write against the reads before it: reads and commuting
  writes since the last plain write fall into alternating *blocks* (runs of one
  class), and an access is checked against each other unit's last access in the
  block just before its own (an earlier block is ordered before that one when no
  race came first),

each ordered iff the earlier access's epoch is at most what the later access's unit
knows of the earlier unit at that point (``clocks.known``: one walk over the
synchronisation events answers every pair). Like FastTrack, this finds
exactly the first race on each variable and every access that races with the latest
conflicting access (``docs/predictive.md``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

import polars as pl

from tracelens.analyze.columns import G
from tracelens.analyze.hb.clocks import U, known
from tracelens.analyze.hb.locksets import disjoint_locksets
from tracelens.analyze.hb.pairs import race_findings
from tracelens.analyze.hb.shared import CW, Tables, V
from tracelens.analyze.kinds import KINDS
from tracelens.analyze.options import DEFAULT, Options

__all__ = ["KIND", "data_race"]

KIND: Final = "data_race"


def data_race(
    t: Tables,
    events: pl.LazyFrame,
    /,
    *,
    options: Options = DEFAULT,
    on_pairs: Callable[[pl.DataFrame], None] | None = None,
) -> pl.DataFrame:
    """Find happens-before data races (FastTrack epochs over vector clocks).

    One finding per variable and pair of code sites: the earlier access's site first.
    Each racy access is paired with the latest conflicting access that does not happen
    before it (the last write, or a read since that write); the first occurrence and
    the one with the widest time gap are kept as ``events`` and ``worst``.

    Args:
        t: The shared pass over ``events`` (``shared.tables``).
        events: The loaded trace (``Trace.events``).
        options: ``max_lockset_pairs_sets`` decides the common-lock shortcut.
        on_pairs: Called with the racy pairs (``e_g``, ``p_g``: ``G`` of the later and
            the earlier access) as soon as they are known, before the findings are
            built from them (``analysis.run`` hands their sites to
            ``inconsistent_locking`` this way, see ``race_sites``).

    Returns:
        ``FINDING_SCHEMA`` rows of kind ``data_race`` (severity ``error``).
    """
    acc = t.acc.lazy()
    writes = acc.filter(pl.col("w") & ~pl.col(CW)).select(
        V,
        pl.col(G).alias("p_g"),
        pl.col(U).alias("p_u"),
        pl.col("epoch").alias("p_epoch"),
        pl.col("ls").alias("p_ls"),
    )
    # (a) every access against the last write before it.
    last_w = (
        acc.select(G, V, U, "ls")
        .join_asof(
            writes,
            left_on=G,
            right_on="p_g",
            by=V,
            allow_exact_matches=False,
            check_sortedness=False,
        )
        .filter(pl.col("p_u").is_not_null() & (pl.col("p_u") != pl.col(U)))
    )
    # (b) every read and commuting write against the next plain write after it.
    next_w = (
        acc.filter(~pl.col("w") | pl.col(CW))
        .select(
            pl.col(G).alias("p_g"),
            V,
            pl.col(U).alias("p_u"),
            pl.col("epoch").alias("p_epoch"),
            pl.col("ls").alias("p_ls"),
        )
        .join_asof(
            writes.select(
                V,
                pl.col("p_g").alias("e_g"),
                pl.col("p_u").alias("e_u"),
                pl.col("p_ls").alias("e_ls"),
            ),
            left_on="p_g",
            right_on="e_g",
            by=V,
            strategy="forward",
            allow_exact_matches=False,
            check_sortedness=False,
        )
        .filter(pl.col("e_u").is_not_null() & (pl.col("e_u") != pl.col("p_u")))
    )
    # Two accesses that held a common lock are ordered by it (the earlier one's unit
    # released it before the later one's took it): only the others need clocks.
    ids = t.acc["ls"].unique().to_list()
    # (not when a lock was released by another unit than its acquirer: then holding it
    # in common orders nothing, and only the clocks can tell)
    # (c) reads against commuting writes and back, block by block.
    blocks = _commuting_pairs(t.acc) if t.acc[CW].any() else None
    if len(ids) <= options.max_lockset_pairs_sets and not t.foreign_releases:
        # (the table ``apart`` joins; its row-by-row test would cost more than it saves)
        sets_apart = disjoint_locksets(ids, t.locksets).lazy()
        on = ["_la", "_lb"]
        last_w = last_w.join(sets_apart, left_on=["ls", "p_ls"], right_on=on, how="semi")
        next_w = next_w.join(sets_apart, left_on=["p_ls", "e_ls"], right_on=on, how="semi")
        if blocks is not None:
            blocks = blocks.join(sets_apart, left_on=["ls", "p_ls"], right_on=on, how="semi")
    if blocks is not None:
        last_w = pl.concat([last_w, blocks.select(last_w.collect_schema().names())])
    # The pairs need no clocks: made first, then one walk over the synchronisation
    # events answers what the later access's unit knew of the earlier one (both kinds).
    last_df, next_df = pl.collect_all([last_w, next_w])
    queries = pl.concat(
        [
            last_df.select(pl.col(G).alias("e_g"), "p_g", pl.col(U).alias("_qu"), "p_u", "p_epoch"),
            next_df.select("e_g", "p_g", pl.col("e_u").alias("_qu"), "p_u", "p_epoch"),
        ]
    )
    ordered = known(queries, t.sync, t.units.height, unit="_qu", other="p_u", at="e_g", out="_k")
    racy = (
        ordered.lazy()
        .filter(pl.col("p_epoch") > pl.col("_k"))
        .group_by("e_g")
        .agg(pl.col("p_g").max())
    )
    if on_pairs is not None:
        pairs = racy.collect()
        on_pairs(pairs)
        racy = pairs.lazy()
    return race_findings(
        racy,
        events,
        t,
        kind=KIND,
        severity=KINDS[KIND].severity,
        tail="no synchronisation between them",
    )


def _commuting_pairs(acc: pl.DataFrame) -> pl.LazyFrame:
    """Pairs (later access, each other unit's last access of the block before it) of
    reads and commuting writes, on the variables with commuting writes (check (c)).

    Rows as ``last_w``'s: ``G``, ``V``, ``U``, ``ls`` of the later access, ``p_g``,
    ``p_u``, ``p_epoch``, ``p_ls`` of the earlier one.
    """
    # class: 0 a read, 1 a commuting write, 2 a plain write (a block of its own kind)
    cls = pl.when(~pl.col("w")).then(0).when(pl.col(CW)).then(1).otherwise(2).alias("_c")
    commuting = acc.lazy().filter(pl.col(CW)).select(V).unique()
    cand = (
        acc.lazy()
        .join(commuting, on=V, how="semi", maintain_order="left")
        .select(G, V, U, "epoch", "ls", cls)
        .with_columns(
            ((pl.col("_c") != pl.col("_c").shift(1)).fill_null(True) | (pl.col("_c") == 2))
            .cum_sum()
            .over(V)
            .alias("_b")
        )
        .filter(pl.col("_c") != 2)
    )
    last = cand.group_by(V, "_b", U).agg(
        pl.col(G).max().alias("p_g"),
        pl.col("epoch").sort_by(G).last().alias("p_epoch"),
        pl.col("ls").sort_by(G).last().alias("p_ls"),
        pl.col("_c").first().alias("_pc"),
    )
    return (
        cand.join(
            last.select(
                V,
                (pl.col("_b") + 1).alias("_b"),
                pl.col(U).alias("p_u"),
                "p_g",
                "p_epoch",
                "p_ls",
                "_pc",
            ),
            on=[V, "_b"],
        )
        .filter((pl.col("p_u") != pl.col(U)) & (pl.col("_pc") != pl.col("_c")))
        .select(G, V, U, "ls", "p_g", "p_u", "p_epoch", "p_ls")
    )
