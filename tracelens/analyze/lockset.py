"""Inconsistent locking: the hybrid lock-set discipline (O'Callahan & Choi, PPoPP 2003).

Two accesses to one variable are reported when they come from different units, at
least one is a write, the sets of locks their units held share no lock, and neither
happens before the other by fork/join or a hand-off (``send`` -> ``recv``). Lock
release -> acquire edges deliberately do not order accesses here: a race that this
run's incidental lock order hid from ``data_race`` still shows.

How it is computed (``docs/predictive.md``): the vector-clock pass of
``tracelens.analyze.hb`` runs with fork/join and hand-off edges only, and also
tracks the locks each unit holds. Accesses are then grouped into *classes*: same
variable, unit, clock (``ver``), held lock set, read/write and code site. Whether two
accesses violate the discipline depends only on their classes, so the pairwise check
is a join of classes, not of accesses; variables whose accesses all hold one common
lock (the usual, correct case) are dropped before that join.
"""

from __future__ import annotations

import polars as pl

from tracelens import schema as s
from tracelens.analyze.findings import WARNING
from tracelens.analyze.hb import (
    OP,
    G,
    _race_findings,
    attach,
    detail_columns,
    global_order,
    known,
    sync_pass,
    with_segments,
)

__all__ = ["inconsistent_locking"]

_CLASS = [s.PID, s.VAR, s.UNIT, "ver", "ls", "w", s.FILE, s.LINE, s.FUNC]


def inconsistent_locking(events: pl.LazyFrame, /, *, internal_locks: bool = True) -> pl.LazyFrame:
    """Find pairs of accesses that no common lock and no fork/join or hand-off orders.

    Args:
        events: The loaded trace (``Trace.events``, contract columns).
        internal_locks: Count locks created by the standard library (marked
            ``internal``) in the held sets. On by default: user code only ever runs
            under such a lock when it is used as a mutex, as a ``Condition()``'s own
            lock is by ``with cond:``.

    Returns:
        ``FINDING_SCHEMA`` rows of kind ``inconsistent_locking`` (severity
        ``warning``), one per variable and pair of code sites, the earlier site first;
        ``count`` is the number of (unit, clock, lock set) class pairs that show it.
    """
    t = sync_pass(events, lock_edges=False, internal_locks=internal_locks)
    acc = (
        with_segments(
            events.filter(pl.col(OP).cast(pl.String).is_in(list(s.MEMORY_OPS))).select(
                global_order(),
                pl.col(s.PID).cast(pl.Int64),
                pl.col(s.VAR),
                pl.col(s.UNIT),
                (pl.col(OP).cast(pl.String) == s.Op.WRITE).alias("w"),
                pl.col(s.FILE),
                pl.col(s.LINE),
                pl.col(s.FUNC),
            ),
            t.seg,
        )
        .collect()
        .lazy()
    )  # used by several branches: computed once
    # Variables worth a pairwise look: two units, a write, and no lock common to all.
    var_key = [s.PID, s.VAR]
    shape = acc.group_by(var_key).agg(
        pl.col(s.UNIT).n_unique().alias("_units"),
        pl.col("w").any().alias("_w"),
        pl.col("ls").n_unique().alias("_nls"),
    )
    locks = t.locksets.lazy().explode("locks").drop_nulls("locks")
    common = (
        acc.select(*var_key, "ls")
        .unique()
        .join(locks, on="ls")
        .group_by([*var_key, "locks"])
        .agg(pl.len().alias("_c"))
        .join(shape, on=var_key)
        .filter(pl.col("_c") == pl.col("_nls"))
        .select(var_key)
        .unique()
    )
    todo = (
        shape.filter((pl.col("_units") > 1) & pl.col("_w"))
        .select(var_key)
        .join(common, on=var_key, how="anti")
    )
    cand = acc.join(todo, on=var_key, how="semi")

    classes = cand.group_by(_CLASS).agg(
        pl.col(G).min().alias("f"), pl.col("epoch").first().alias("epoch")
    )
    a = classes.select(pl.all().name.prefix("a_"))
    b = classes.select(pl.all().name.prefix("b_"))
    pairs = (
        a.join(b, left_on=[f"a_{k}" for k in var_key], right_on=[f"b_{k}" for k in var_key])
        .filter(
            (pl.col("a_unit") != pl.col("b_unit"))
            & (pl.col("a_w") | pl.col("b_w"))
            & (pl.col("a_f") < pl.col("b_f"))  # a is the earlier class
        )
        .join(
            t.locksets.lazy().select(pl.col("ls").alias("a_ls"), pl.col("locks").alias("_la")),
            on="a_ls",
            how="left",
        )
        .join(
            t.locksets.lazy().select(pl.col("ls").alias("b_ls"), pl.col("locks").alias("_lb")),
            on="b_ls",
            how="left",
        )
        .filter(pl.col("_la").list.set_intersection(pl.col("_lb")).list.len() == 0)
    )
    # a happens before b (by fork/join/hand-offs) iff b's unit knew a's epoch at b.
    pairs = known(pairs, t.changes, unit="b_unit", other="a_unit", at="b_f", out="_k").filter(
        pl.col("a_epoch") > pl.col("_k")
    )
    # The first instance of a class pair: b's first access and the latest access of a
    # before it.
    right = cand.select(*[pl.col(k).alias(f"a_{k}") for k in _CLASS], pl.col(G).alias("p_g")).sort(
        "p_g"
    )
    inst = (
        pairs.select(*[f"a_{k}" for k in _CLASS], pl.col("b_f").alias("e_g"))
        .sort("e_g")
        .join_asof(
            right,
            left_on="e_g",
            right_on="p_g",
            by=[f"a_{k}" for k in _CLASS],
            allow_exact_matches=False,
            check_sortedness=False,
        )
        .select("e_g", "p_g")
    )
    details = with_segments(
        events.filter(pl.col(OP).cast(pl.String).is_in(list(s.MEMORY_OPS))).select(
            detail_columns()
        ),
        t.seg,
    ).drop("epoch", "ver")
    full = attach(attach(inst, details, t.locksets, "e_g", "e_"), details, t.locksets, "p_g", "p_")
    return _race_findings(
        full,
        kind="inconsistent_locking",
        severity=WARNING,
        tail="no common lock, and no start/join or hand-off orders them",
    )
