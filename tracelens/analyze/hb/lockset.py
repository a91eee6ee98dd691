"""Inconsistent locking: the hybrid lock-set discipline (O'Callahan & Choi, PPoPP 2003).

Two accesses to one variable are reported when they come from different units, at
least one is a write (and not both commuting writes, ``schema.Kind.COMMUTING``), the
sets of locks their units held share no lock, and neither
happens before the other by fork/join or a hand-off (``send`` -> ``recv``). Lock
release -> acquire edges do not order accesses here, so that a race that this run's
incidental lock order hid from ``data_race`` still shows, except the lock edges that
hand something over (``shared._lock_edges``): a release by a unit that does not hold
the lock, which hands off to the next acquire, orders every pair; a publication (the
acquiring section reads what the releasing section wrote) orders the pairs of accesses
that hold no lock (``Tables.pclocks``).

How it is computed (``docs/predictive.md``): the shared pass of
``tracelens.analyze.hb.shared`` (``tables``) keeps a second clock per unit with fork/join and
hand-off edges only, and the locks each unit holds. Variables whose accesses all hold
one common lock (the usual, correct case) are dropped first. For the others:

* a *class* is a run of accesses with the same variable, unit, hybrid clock
  (``hver``), held lock set, read/write and code site; only its first access can be
  the first violating access of the class;
* a *key* is the same without the clock. Against a class's first access ``b``, only
  the latest access of each key before ``b`` needs checking: an earlier access of
  the same key happens before ``b`` whenever that latest one does.

So the check is a join of classes with the keys their kind of access (variable, held
set, read/write, code site) can conflict with (per variable: classes times keys, not
classes squared), the latest access of the key before the class (an as-of merge on one
packed Int64: dense key id, row in trace order), and a walk over the fork/join and
hand-off events for the hybrid order (``Tables.hclocks``). Pairs of code sites that a
data race already states (``reported``) are taken out of the (kind, key) table,
before any pair of accesses is made.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

import polars as pl

from tracelens.analyze import columns as c
from tracelens.analyze.columns import G
from tracelens.analyze.findings import SITE_DTYPE
from tracelens.analyze.hb.clocks import FORK, JOIN, OTHER_UNIT, U
from tracelens.analyze.hb.locksets import apart
from tracelens.analyze.hb.pairs import race_findings
from tracelens.analyze.hb.shared import CW, PEPOCH, PVER, Tables, V
from tracelens.analyze.kinds import KINDS
from tracelens.analyze.options import DEFAULT, Options

__all__ = ["KIND", "inconsistent_locking"]

KIND: Final = "inconsistent_locking"

#: The code site of an access as one 64-bit hash (as the keys below are hashed).
_SITE = pl.struct(c.FILE, c.LINE, c.FUNC).hash().alias("_site")

_KEY = [V, U, "ls", "w", CW, "_site"]


def inconsistent_locking(
    t: Tables,
    events: pl.LazyFrame,
    /,
    *,
    options: Options = DEFAULT,
    reported: pl.DataFrame | Callable[[], pl.DataFrame] | None = None,
) -> pl.DataFrame:
    """Find pairs of accesses that no common lock and no fork/join or hand-off orders.

    Args:
        t: The shared pass over ``events`` (``shared.tables``). Its held sets count
            internal locks when ``Options.internal_locks`` is on (the default: user
            code only ever runs under such a lock when it is used as a mutex, as a
            ``Condition()``'s own lock is by ``with cond:``).
        events: The loaded trace (``Trace.events``).
        options: ``max_lockset_pairs_sets`` and ``batch_accesses``.
        reported: ``FINDING_SCHEMA`` rows already reported, or a callable giving them
            (called once the pairs are about to be checked, so that what produces them
            can run meanwhile): a pair of code sites on a variable that one of them
            states (the two sites in either order) is left out. ``analysis.run`` passes
            the data races: two accesses unordered by happens-before and holding no
            common lock are a data race, and saying it twice adds nothing.

    Returns:
        ``FINDING_SCHEMA`` rows of kind ``inconsistent_locking`` (severity
        ``warning``), one per variable and pair of code sites, the earlier site first;
        ``count`` is the number of instances found: (class of the later access,
        key of the earlier access) pairs that show it.
    """
    acc = t.acc.lazy()
    # Variables worth a pairwise look: two units, a write, and no lock common to all.
    var_key = [V]
    shape = acc.group_by(var_key).agg(
        pl.col(U).n_unique().alias("_units"),
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
    cand = (
        acc.filter(pl.col(V).is_in(todo.collect().to_series().implode()))  # keeps G order
        .select(G, V, U, "ls", "w", CW, _SITE, "hepoch", "hver", PEPOCH, PVER)
        .collect()
    )
    if not cand[G].is_sorted():  # ``Tables.acc`` is sorted by G; be safe
        cand = cand.sort(G)
    if cand.height == 0:
        return race_findings(
            pl.LazyFrame(schema={"e_g": pl.Int64, "p_g": pl.Int64}),
            events,
            t,
            kind=KIND,
            severity=KINDS[KIND].severity,
            tail="",
        )
    # Keys as dense integers: numbered by a 64-bit hash of their columns (two keys
    # colliding, about n^2 / 2^65, would merge their timelines, as the sort keys of
    # ``docs/analysis.md`` do). A class's first access is the first row of its
    # (key, hver) in trace order.
    i64 = pl.Int64
    cand = cand.with_columns(
        pl.struct(_KEY).hash().rank("dense").cast(i64).alias("_k"),
        pl.int_range(pl.len(), dtype=i64).alias("_r"),
    )
    # (key, hver) as one Int64: ``_k`` is below 2**31, and so is ``hver`` (one version
    # per synchronisation event of the unit)
    first = (pl.col("_k") * (1 << 32) + pl.col("hver")).is_first_distinct()
    classes = (
        cand.lazy()
        .filter(first)
        .select(
            pl.col(G).alias("e_g"),
            pl.col("_r").alias("e_r"),
            pl.col(U).alias("e_u"),
            pl.col("hver").alias("e_hver"),
            pl.col(PVER).alias("e_pver"),
            V,
            "ls",
            "w",
            CW,
            pl.col("_site").alias("e_site"),
        )
    )
    # a key's first access in trace order stands for it
    keys = (
        cand.lazy()
        .filter(pl.col("_k").is_first_distinct())
        .select("_k", V, U, "ls", "w", CW, "_site", pl.col(G).alias("_first"))
    )
    # The keys each kind of later access (variable, held lock set, read/write, code
    # site) must be checked against: a write among the two (not two commuting writes),
    # lock sets that share no lock.
    kinds = classes.select(
        V, pl.col("ls").alias("e_ls"), pl.col("w").alias("e_w"), pl.col(CW).alias("e_cw"), "e_site"
    ).unique()
    classes_df, kinds_df, keys_df = pl.collect_all([classes, kinds, keys])
    compat_df = (
        apart(
            kinds_df.lazy()
            .join(keys_df.lazy(), on=V)
            .filter((pl.col("w") | pl.col("e_w")) & ~(pl.col(CW) & pl.col("e_cw"))),
            "ls",
            "e_ls",
            t.locksets,
            max_sets=options.max_lockset_pairs_sets,
        )
        .select(V, "e_ls", "e_w", "e_cw", "e_site", "_k", U, "_site", "_first")
        .collect()
    )
    if callable(reported):
        reported = reported()
    if reported is not None:  # leave out the pairs of sites already stated
        compat_df = compat_df.join(
            _stated(reported, t.acc).collect(),
            left_on=[V, "_site", "e_site"],
            right_on=[V, "_sa", "_sb"],
            how="anti",
        )
    # The latest access of the key before the class's first access: with (key, row)
    # packed into one Int64, a plain as-of merge of the sorted pairs and accesses.
    packed = cand.select(
        (pl.col("_k") * (1 << 32) + pl.col("_r")).alias("_q"),
        pl.col(G).alias("p_g"),
        "hepoch",
        pl.col("ls").alias("p_ls"),
        PEPOCH,
    ).sort("_q")
    # Pairs (class, key) number several per access: on big traces they are made a batch
    # of variables at a time, which bounds the memory they take.
    n_batches = max(1, cand.height // options.batch_accesses)
    # who started each unit and when, who joined it first and when
    op, other = pl.col(c.OP), pl.col(OTHER_UNIT)
    started = (
        t.hsync.lazy()
        .filter((op == FORK) & other.is_not_null())
        .group_by(other)
        .agg(pl.col(U).first().alias("_parent"), pl.col(G).first().alias("_fg"))
        .rename({OTHER_UNIT: "e_u"})
        .collect()
        .lazy()
    )
    joined = (
        t.hsync.lazy()
        .filter((op == JOIN) & other.is_not_null())
        .group_by(other)
        .agg(pl.col(U).first().alias("_by"), pl.col(G).first().alias("_jg"))
        .rename({OTHER_UNIT: U})
        .join(cand.lazy().group_by(U).agg(pl.col(G).max().alias("_last")), on=U)
        .collect()
        .lazy()
    )
    # all of the key's unit happens before the class: it made its last access, then
    # was joined by the unit that then started the class's unit, before the class
    before_start = (
        (pl.col("_last") < pl.col("_jg"))
        & (pl.col("_by") == pl.col("_parent"))
        & (pl.col("_jg") < pl.col("_fg"))
        & (pl.col("_fg") < pl.col("e_g"))
    )
    found = []
    for i in range(n_batches):
        batch = classes_df.lazy()
        if n_batches > 1:
            batch = batch.filter(pl.col(V).hash() % n_batches == i)
        pairs = (
            batch.join(
                compat_df.lazy(),
                left_on=[V, "ls", "w", CW, "e_site"],
                right_on=[V, "e_ls", "e_w", "e_cw", "e_site"],
            )
            # another unit, and a key with an access before the class's first access
            .filter((pl.col(U) != pl.col("e_u")) & (pl.col("_first") < pl.col("e_g")))
            # not a unit joined before the class's unit was started by the same unit
            # (the clock check would drop the pair: with a thread per request, most)
            .join(started, on="e_u", how="left")
            .join(joined, on=U, how="left")
            .filter(~before_start.fill_null(False))
            .select(
                "e_g",
                "e_u",
                "e_hver",
                "e_pver",
                U,
                pl.col("ls").alias("e_ls"),
                (pl.col("_k") * (1 << 32) + pl.col("e_r")).alias("_q"),
            )
            .sort("_q")
            # a match always exists and is of the same key: `_first` < e_g
            .join_asof(packed.lazy(), on="_q", allow_exact_matches=False, check_sortedness=False)
            .select(
                "e_g",
                "e_u",
                "e_hver",
                "e_pver",
                U,
                "p_g",
                pl.col("hepoch").alias("p_epoch"),
                ((pl.col("e_ls") == 0) & (pl.col("p_ls") == 0)).alias("_free"),
                pl.col(PEPOCH).alias("p_pepoch"),
            )
        )
        # the earlier access happens before the later one (by fork/join/hand-offs) iff
        # the later one's unit knew its epoch then.
        unordered = t.hclocks.known(
            pairs, unit="e_u", version="e_hver", other=U, out="_known"
        ).filter(pl.col("p_epoch") > pl.col("_known"))
        if t.pclocks is not None:
            # two accesses that hold no lock: a publication through a lock orders them
            unordered = t.pclocks.known(
                unordered, unit="e_u", version="e_pver", other=U, out="_pk"
            ).filter(~pl.col("_free") | (pl.col("p_pepoch") > pl.col("_pk")))
        found.append(unordered.select("e_g", "p_g").collect())
    inst = pl.concat(found).lazy()
    return race_findings(
        inst,
        events,
        t,
        kind=KIND,
        severity=KINDS[KIND].severity,
        tail="no common lock, and no start/join or hand-off orders them",
    )


def _stated(reported: pl.DataFrame, acc: pl.DataFrame) -> pl.LazyFrame:
    """``(V, _sa, _sb)``: the variables and pairs of code sites (hashed as ``_SITE``, both
    orders) that the ``reported`` rows state."""
    sites = pl.col("sites")
    pairs = (
        reported.lazy()
        .filter(sites.list.len() == 2)
        .select(
            pl.col("var").alias(c.VAR),
            sites.list.first().cast(SITE_DTYPE).hash().alias("_sa"),
            sites.list.last().cast(SITE_DTYPE).hash().alias("_sb"),
        )
    )
    both = pl.concat(
        [pairs, pairs.select(c.VAR, pl.col("_sb").alias("_sa"), pl.col("_sa").alias("_sb"))]
    )
    # a variable's name stands for it in every process, as in the rows
    names = acc.lazy().select(V, c.VAR).unique()
    return both.join(names, on=c.VAR).select(V, "_sa", "_sb").unique()
