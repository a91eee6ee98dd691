"""The shared pass of the predictive analyses: one walk over the synchronisation events.

All accesses a unit makes between two of its synchronisation events share one
vector clock, so only the synchronisation events go through the sequential walk
(``clocks.ClockWalk``). Here they are collected once per trace for the four
predictive analyses and the *hybrid* order that ``inconsistent_locking`` uses
(fork/join, hand-offs and the lock edges that hand something over, ``_lock_edges``:
few events) is walked for its clock versions, and once more with publications
through a lock when the trace has one.
Meanwhile polars computes the locks every unit holds, the nested acquires and the
final lock holders (``locksets``), and the access table. The results are small
tables (``Tables``): per unit the changes of its own epoch, hybrid clock version and
held lock set (each merged into the access table with a ``join_asof``), and the
synchronisation events themselves, which ``clocks.known`` walks again to answer
"what did this unit know of that one here" for the pairs an analysis checks (the
happens-before walk is ``data_race``'s: the other analyses never wait for it).
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass
from typing import Any, Final

import polars as pl

from tracelens import schema as s
from tracelens.analyze import columns as c
from tracelens.analyze.columns import OP, G, global_order
from tracelens.analyze.hb.clocks import (
    ACQUIRE,
    EDGE_OPS,
    FORK,
    JOIN,
    OBJ_CODE,
    OTHER_UNIT,
    RECEIVE,
    RELEASE,
    SEND,
    U,
    Versions,
    vector_clocks,
)
from tracelens.analyze.hb.locksets import LOCK, Held, held_lock_masks, walk_locks
from tracelens.analyze.options import DEFAULT, Options

__all__ = ["CW", "PEPOCH", "PVER", "Tables", "V", "clear_cache", "frame_of_rows", "tables"]

#: Column identifying a variable (its process and name) by one Int64.
V: Final = "_v"
#: Column of ``Tables.acc``: the access is a commuting write (``schema.Kind.COMMUTING``).
CW: Final = "cw"
#: Column of ``Tables.acc``: the own component of the hybrid clock with publications
#: through a lock (``Tables.pclocks``).
PEPOCH: Final = "pepoch"
#: Column of ``Tables.acc``: the version of that clock (``Tables.pclocks``).
PVER: Final = "pver"


def _op_in(ops: tuple[str, ...] | frozenset[str]) -> pl.Expr:
    return pl.col(OP).cast(pl.String).is_in(list(ops))


@dataclass(frozen=True, slots=True)
class Tables:
    """What the one pass over the synchronisation events produced (``tables``).

    Attributes:
        units: ``U`` (dense Int32 id) -> ``unit`` (name), every unit of the trace.
        acc: One row per access (read/write) to a shared variable (one that two units
            or more access, at least one writing: no other can race), sorted by ``G``:
            ``G``, ``pid``, ``var``, ``V`` (the variable as one Int64), ``U``, ``w`` (a
            write), ``cw`` (a commuting write: ``w`` too, and it does not conflict with
            the variable's other commuting writes), ``ts``, ``file``, ``line``,
            ``func``, and the state of its unit then: ``epoch`` (own happens-before
            clock component), ``hepoch`` and
            ``hver`` (own component
            and version of the hybrid clock, ``hsync``'s edges only; accesses with
            the same unit and ``hver`` share one hybrid clock), ``pepoch`` and
            ``pver`` (the same with publications through a lock, ``pclocks``) and
            ``ls`` (id of the held lock set).
        sync: The synchronisation events the happens-before walk goes over
            (``clocks.known`` walks them to answer what a unit knew of another at a
            point): ``G``, ``op`` (index into ``clocks.EDGE_OPS``), ``U``,
            ``OBJ_CODE``, ``OTHER_UNIT``, ``msg``, sorted by ``G``.
        hsync: The events (as ``sync``) of the hybrid order: fork/join, hand-offs,
            and releases by a unit that does not hold the lock (each as a hand-off
            from the release to the lock's next acquire, ``_lock_edges``).
        hclocks: The hybrid clocks of every unit at every version (``hver``) of it.
        locksets: ``ls`` -> ``locks`` (sorted lock names); id 0 is the empty set.
        holders: For every lock held at the end of the trace, who holds it and the
            ``G`` of the acquire.
        held: The held lock sets as ``locksets.Held``: bit masks and members by
            ``ls``, lock names, the distinct nested acquires (one row per unit, lock
            acquired and held set, whatever the number of locks held) and every
            acquire (for ``lock_order_inversion``).
        foreign_releases: Some lock was released by a unit other than the one that
            acquired it (a ``Lock`` used as a binary semaphore). Two accesses that held
            a common lock are then not necessarily ordered by it.
    """

    units: pl.DataFrame
    acc: pl.DataFrame
    sync: pl.DataFrame
    hsync: pl.DataFrame
    hclocks: Versions
    locksets: pl.DataFrame
    holders: dict[str, tuple[str, int]]
    held: Held
    foreign_releases: bool = False
    #: The hybrid clocks when publications through a lock count too, of every unit at
    #: every version (``acc``'s ``pver``; ``pepoch`` is their own component), for pairs
    #: of accesses that hold no lock; ``None`` when the trace has no publication (then
    #: ``hclocks`` stands for them, and ``pver``, ``pepoch`` are ``hver``, ``hepoch``).
    pclocks: Versions | None = None


# events LazyFrame (by identity) -> its tables. A LazyFrame is immutable, so its
# identity names its data; the entry goes when the frame is garbage-collected.
_CACHE: dict[tuple[int, bool, int, int], tuple[weakref.ref[pl.LazyFrame], Tables]] = {}
_CACHE_LOCK = threading.Lock()


def cache_entries() -> int:
    """How many events frames have their tables cached now."""
    with _CACHE_LOCK:
        return len(_CACHE)


def clear_cache() -> None:
    """Forget the tables computed so far (benchmarks time the pass itself)."""
    with _CACHE_LOCK:
        _CACHE.clear()


def tables(events: pl.LazyFrame, *, options: Options = DEFAULT, cache: bool = True) -> Tables:
    """The shared pass over the synchronisation events, computed once per events frame.

    Every predictive analysis asks for this; the first call collects the
    synchronisation events and the accesses and walks the former in Python, later
    calls with the same ``events`` object (and options) get the same tables.

    Args:
        events: The loaded trace (contract columns, sorted by ``(pid, seq)``).
        options: ``internal_locks`` and the lock-set limits (``Options``).
        cache: Keep the result for later calls (an earlier cached result is used
            either way).

    Returns:
        The tables, see ``Tables``.
    """
    key = (id(events), options.internal_locks, options.max_mask_locks, options.mask_word_bits)
    with _CACHE_LOCK:
        hit = _CACHE.get(key)
    if hit is not None and hit[0]() is events:
        return hit[1]
    t = _compute(events, options)
    if not cache:
        return t
    try:
        ref = weakref.ref(events, lambda _r, k=key: _CACHE.pop(k, None))  # type: ignore[misc]
    except TypeError:  # not weak-referenceable: do not cache
        return t
    with _CACHE_LOCK:
        _CACHE[key] = (ref, t)
    return t


def _compute(events: pl.LazyFrame, options: Options) -> Tables:
    fork_join = pl.col(OP).cast(pl.String).is_in([s.Op.FORK, s.Op.JOIN])
    names = sorted(
        pl.concat(
            [
                events.select(pl.col(c.UNIT).cast(pl.String)),
                events.filter(fork_join).select(pl.col(c.OBJ).cast(pl.String).alias(c.UNIT)),
            ]
        )
        .drop_nulls()
        .unique()
        .collect()[c.UNIT]
        .to_list()
    )
    ids = list(range(len(names)))
    # unit ids: the physical codes of an Enum with the sorted names (cheaper than a
    # string replace over every event; all names are categories, nulls stay null)
    uid = pl.col(c.UNIT).cast(pl.String).cast(pl.Enum(names)).to_physical().cast(pl.Int32)
    obj = pl.col(c.OBJ).cast(pl.String)
    sync = (
        events.filter(_op_in(EDGE_OPS))
        .select(
            global_order(),
            pl.col(OP)
            .cast(pl.String)
            .replace_strict(list(EDGE_OPS), range(len(EDGE_OPS)))
            .alias(OP),
            uid.alias(U),
            obj,
            # objects as ints (dict keys in the loop; Python strings are slow to fetch)
            obj.cast(pl.Categorical).to_physical().cast(pl.Int64).alias(OBJ_CODE),
            pl.when(fork_join)
            .then(obj.replace_strict(names, ids, default=None, return_dtype=pl.Int32))
            .alias(OTHER_UNIT),
            pl.col(c.MSG),
            pl.col(c.INTERNAL).fill_null(False),
        )
        .sort(G)
        .collect()
    )
    # The hybrid order's events: fork/join and hand-offs (few events); walked once the
    # accesses are known, with the lock edges that hand something over (``_lock_edges``),
    # for the versions of the hybrid clocks. The happens-before walk over every
    # synchronisation event is ``data_race``'s, which answers its queries as it goes
    # (``clocks.known``).
    n = len(names)
    walked = [G, OP, U, OBJ_CODE, OTHER_UNIT, c.MSG]
    hybrid_ev = sync.filter(pl.col(OP).is_in([FORK, JOIN, SEND, RECEIVE])).select(walked)
    # The accesses, collected in the background while the walk runs in Python.
    # Only shared variables (two units or more, a write) can race or break the lock-set
    # discipline: the others (thread-local, read-only) are dropped here.
    accesses = events.filter(_op_in(s.MEMORY_OPS)).select(
        global_order(),
        pl.col(c.PID).cast(pl.Int64),
        pl.col(c.VAR).cast(pl.String),
        # the variable as one Int64 (pid, string code): a cheap key to join on
        (
            pl.col(c.PID).cast(pl.Int64) * (1 << 32)
            + pl.col(c.VAR).cast(pl.String).cast(pl.Categorical).to_physical().cast(pl.Int64)
        ).alias(V),
        uid.alias(U),
        (pl.col(OP).cast(pl.String) == s.Op.WRITE).alias("w"),
        (
            (pl.col(OP).cast(pl.String) == s.Op.WRITE)
            & (pl.col(c.KIND).cast(pl.String) == s.Kind.COMMUTING).fill_null(False)
        ).alias(CW),
        pl.col(c.TS).cast(pl.Int64),
        pl.col(c.FILE).cast(pl.String),
        pl.col(c.LINE).cast(pl.Int64),
        pl.col(c.FUNC).cast(pl.String),
    )
    # (commuting writes alone conflict with nothing: a read or a plain write is needed)
    plain = pl.col("w") & ~pl.col(CW)
    shared_vars = (
        accesses.group_by(V)
        .agg(
            (
                (pl.col(U).n_unique() > 1)
                & (plain.any() | (pl.col(CW).any() & (~pl.col("w")).any()))
            ).alias("_shared")
        )
        .filter("_shared")
        .select(V)
    )
    acc_job = accesses.join(shared_vars, on=V, how="semi", maintain_order="left").collect(
        background=True
    )
    obj_names = dict(
        sync.lazy()
        .filter(pl.col(OBJ_CODE).is_not_null())
        .group_by(OBJ_CODE)
        .agg(pl.col(c.OBJ).first())
        .collect()
        .iter_rows()
    )
    lock_ev = sync.filter(
        pl.col(OP).is_in([ACQUIRE, RELEASE])
        & (pl.lit(options.internal_locks) | ~pl.col(c.INTERNAL))
    ).select(G, OP, U, OBJ_CODE)
    lock_codes = sorted(lock_ev[OBJ_CODE].unique().to_list(), key=lambda o: obj_names.get(o, ""))
    # a release by a unit other than the lock's last acquirer
    last_acquirer = pl.when(pl.col(OP) == ACQUIRE).then(pl.col(U)).forward_fill().over(OBJ_CODE)
    foreign = lock_ev.select(
        ((pl.col(OP) == RELEASE) & (last_acquirer != pl.col(U)).fill_null(False)).any()
    ).item()
    if len(lock_codes) <= options.max_mask_locks:
        held = held_lock_masks(lock_ev, lock_codes, obj_names, word_bits=options.mask_word_bits)
    else:
        held = walk_locks(lock_ev, obj_names)
    lseg = held.lseg
    i32, i64 = pl.Int32, pl.Int64
    # The happens-before epoch: 1 + the unit's releases, forks and sends so far, + the
    # times it was joined (as ``ClockWalk`` counts them).
    ou_ok = pl.col(OTHER_UNIT).is_not_null()
    op = pl.col(OP)
    epochs = (
        pl.concat(
            [
                sync.filter(op.is_in([RELEASE, SEND]) | ((op == FORK) & ou_ok)).select(U, G),
                sync.filter((op == JOIN) & ou_ok).select(pl.col(OTHER_UNIT).alias(U), G),
            ]
        )
        .sort(G)
        .with_columns((pl.int_range(pl.len()).over(U) + 2).cast(i64).alias("epoch"))
    )
    hb_sync = sync.select(walked)
    del sync
    # Each access takes its unit's latest epoch, hybrid clock and held lock set before
    # it: one as-of join per kind of change (each sorted by ``G`` already); before a
    # unit's first change, the defaults.
    defaults = {"epoch": 1, "hepoch": 1, "hver": 0, "ls": 0}
    acc = acc_job.fetch_blocking()
    if not acc[G].is_sorted():  # the contract says sorted by (pid, seq); be safe
        acc = acc.sort(G)

    def as_of(frame: pl.LazyFrame, changes: pl.DataFrame) -> pl.LazyFrame:
        return frame.join_asof(
            changes.lazy().rename({G: "_sg"}),
            left_on=G,
            right_on="_sg",
            by=U,
            check_sortedness=False,
        ).drop("_sg")

    acc = (
        as_of(as_of(acc.lazy(), epochs), lseg)
        .with_columns(pl.col(k).fill_null(defaults[k]) for k in ("epoch", "ls"))
        .collect()
    )
    # The hybrid order: fork/join, hand-offs and releases by non-holders; and the same
    # with the publications through a lock (``_lock_edges``), for the accesses that
    # hold no lock.
    edges = _lock_edges(lock_ev, acc, held)

    def walk(pairs: pl.DataFrame) -> tuple[pl.DataFrame, Versions, pl.DataFrame]:
        """The events with ``pairs``' edges, their versions and segments."""
        ev = hybrid_ev
        if pairs.height:
            rows = _walk_rows(pairs).select(ev.columns).cast(ev.schema)
            ev = pl.concat([ev, rows]).sort(G, maintain_order=True)
        walked = vector_clocks(ev, n, versions=True)
        assert walked.versions is not None
        return ev, walked.versions, frame_of_rows(walked.segments, seg_cols)

    seg_cols = [(U, i32), (G, i64), ("hepoch", i64), ("hver", i64)]
    hsync, hclocks, hsegs = walk(edges.filter(~pl.col("_pub")))
    acc = (
        as_of(acc.lazy(), hsegs)
        .with_columns(pl.col(k).fill_null(defaults[k]) for k in ("hepoch", "hver"))
        .collect()
    )
    pclocks = None
    if edges["_pub"].any():
        _, pclocks, psegs = walk(edges)
        acc = (
            as_of(acc.lazy(), psegs.rename({"hepoch": PEPOCH, "hver": PVER}))
            .with_columns(pl.col(PEPOCH).fill_null(1), pl.col(PVER).fill_null(0))
            .collect()
        )
    else:
        acc = acc.with_columns(pl.col("hepoch").alias(PEPOCH), pl.col("hver").alias(PVER))
    return Tables(
        units=pl.DataFrame({U: ids, c.UNIT: names}, schema={U: i32, c.UNIT: pl.String}),
        acc=acc,
        sync=hb_sync,
        hsync=hsync,
        hclocks=hclocks,
        locksets=held.lockset_names(),
        holders={k: (names[v[0]], v[1]) for k, v in held.holders.items()},
        held=held,
        foreign_releases=bool(foreign),
        pclocks=pclocks,
    )


def _lock_edges(lock_ev: pl.DataFrame, acc: pl.DataFrame, held: Held) -> pl.DataFrame:
    """The lock edges the hybrid order counts: those that hand something over.

    The lock-set analysis ignores lock order (a race this run's lock order hid must
    still show), except where a release -> acquire edge carries data or a hand-off:

    * publication: a unit, inside a critical section of lock ``L``, reads a value that
      another unit wrote inside its own critical section of ``L`` (the read's last
      write before it): the release that ended the writer's section -> the acquire that
      began the reader's;
    * a release by a unit that does not hold the lock (a ``Lock`` used as a binary
      semaphore) -> the next acquire of the lock.

    Returns:
        One row per edge: ``_rg``, ``_ru`` (the release's ``G`` and unit), ``_ag``,
        ``_au`` (the acquire's), ``_pub`` (a publication, else a hand-off).
    """
    i32, i64 = pl.Int32, pl.Int64
    ev = lock_ev.select(G, OP, U, OBJ_CODE)
    # (release G, releasing unit, acquire G, acquiring unit)
    cols = {"_rg": i64, "_ru": i32, "_ag": i64, "_au": i32, "_pub": pl.Boolean}
    parts = [pl.DataFrame(schema=cols)]
    acquirer = pl.when(pl.col(OP) == ACQUIRE).then(pl.col(U))
    foreign = (
        ev.with_columns(
            acquirer.forward_fill().over(OBJ_CODE).alias("_last"),
            pl.when(pl.col(OP) == ACQUIRE)
            .then(pl.col(G))
            .backward_fill()
            .over(OBJ_CODE)
            .alias("_ag"),
            acquirer.backward_fill().over(OBJ_CODE).alias("_au"),
        )
        .filter(
            (pl.col(OP) == RELEASE)
            & (pl.col("_last") != pl.col(U)).fill_null(False)
            & pl.col("_ag").is_not_null()
        )
        .select(pl.col(G).alias("_rg"), pl.col(U).alias("_ru"), "_ag", "_au", _pub=False)
    )
    parts.append(foreign)
    writes = acc.filter(pl.col("w")).select(
        V, pl.col(G).alias("_wg"), pl.col(U).alias("_wu"), pl.col("ls").alias("_wls")
    )
    reads = acc.filter(~pl.col("w") & (pl.col("ls") != 0)).select(V, G, U, "ls")
    # Publications order only pairs of accesses that hold no lock: without a variable
    # that two units access holding none, a write among them, they order nothing.
    free = (
        acc.lazy()
        .filter(pl.col("ls") == 0)
        .group_by(V)
        .agg(((pl.col(U).n_unique() > 1) & pl.col("w").any()).alias("_f"))
        .select(pl.col("_f").any())
        .collect()
        .item()
    )
    if free and reads.height and writes.height and len(held.masks) > 1:
        codes = pl.Series("_c", held.codes, dtype=i64)
        sets = (
            held.members.with_columns(codes.gather(held.members[LOCK]).alias("_locks"))
            .group_by("ls")
            .agg(pl.col("_locks").drop_nulls())
        )
        rf = (
            reads.lazy()
            .join_asof(
                writes.lazy(),
                left_on=G,
                right_on="_wg",
                by=V,
                allow_exact_matches=False,
                check_sortedness=False,
            )
            .filter(
                pl.col("_wu").is_not_null() & (pl.col("_wu") != pl.col(U)) & (pl.col("_wls") != 0)
            )
            .join(sets.lazy(), on="ls")
            .join(sets.lazy().rename({"ls": "_wls", "_locks": "_wlocks"}), on="_wls")
            .select(G, U, "_wg", pl.col("_locks").list.set_intersection("_wlocks").alias(OBJ_CODE))
            .explode(OBJ_CODE)
            .drop_nulls(OBJ_CODE)
            .unique()
        )
        acquires = (
            ev.lazy().filter(pl.col(OP) == ACQUIRE).select(U, OBJ_CODE, pl.col(G).alias("_ag"))
        )
        ends = ev.lazy().select(
            OBJ_CODE, pl.col(G).alias("_rg"), pl.col(OP).alias("_rop"), pl.col(U).alias("_ru")
        )
        publish = (
            rf.sort(G)
            .join_asof(  # the reader's section: its last acquire of the lock
                acquires.sort("_ag"),
                left_on=G,
                right_on="_ag",
                by=[U, OBJ_CODE],
                check_sortedness=False,
            )
            .sort("_wg")
            .join_asof(  # the writer's section ends at the lock's next event
                ends.sort("_rg"),
                left_on="_wg",
                right_on="_rg",
                by=OBJ_CODE,
                strategy="forward",
                check_sortedness=False,
            )
            .filter((pl.col("_rop") == RELEASE) & (pl.col("_rg") < pl.col("_ag")))
            .select("_rg", "_ru", "_ag", pl.col(U).alias("_au"), _pub=True)
            .collect()
        )
        parts.append(publish)
    return pl.concat([p.cast(cols) for p in parts]).unique()  # type: ignore[arg-type]


def _walk_rows(pairs: pl.DataFrame) -> pl.DataFrame:
    """Edges (``_lock_edges``) as rows for ``vector_clocks``: ``G``, ``OP`` (``SEND`` at the
    release, ``RECEIVE`` at the acquire), ``U``, ``OBJ_CODE`` (one negative code per
    release: ``-1 - G``), ``OTHER_UNIT`` and ``msg`` (null)."""
    i32, i64 = pl.Int32, pl.Int64
    code = (-1 - pl.col("_rg")).alias(OBJ_CODE)
    none = [pl.lit(None, i32).alias(OTHER_UNIT), pl.lit(None, i64).alias(c.MSG)]
    sends = pairs.select(
        pl.col("_rg").alias(G), pl.lit(SEND).alias(OP), pl.col("_ru").alias(U), code, *none
    ).unique(G)
    receives = pairs.select(
        pl.col("_ag").alias(G), pl.lit(RECEIVE).alias(OP), pl.col("_au").alias(U), code, *none
    )
    return pl.concat([sends, receives])


def frame_of_rows(flat: list[int], columns: list[tuple[str, Any]]) -> pl.DataFrame:
    """Columns from a flat list of rows (``[a0, b0, a1, b1, ...]``)."""
    k = len(columns)
    ser = pl.Series(flat, dtype=pl.Int64)
    return pl.DataFrame(
        [ser.gather_every(k, i).cast(dt).alias(name) for i, (name, dt) in enumerate(columns)]
    )
