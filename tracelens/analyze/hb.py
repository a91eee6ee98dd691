"""Happens-before data races: vector clocks with FastTrack's epochs, mostly in polars.

Two accesses to one variable race when they come from different units, at least one
is a write, and neither happens before the other. Happens-before is made of
program order and these edges (``docs/predictive.md``):

* ``release`` of a lock to every later ``acquire`` of it (internal locks included:
  they synchronise as much as the program's own),
* ``fork`` to the child's first event, the child's last event to ``join``,
* ``send`` to ``recv`` on one object: the send with the same ``msg`` when the recv
  has one, else every earlier send on the object.

Atomic regions are not synchronisation.

How the work is split (the design of issue 5): all accesses a unit makes between two
of its synchronisation events share one vector clock, so only the synchronisation
events go through the sequential vector-clock pass (``tables``, run once per trace
and shared by all four predictive analyses). ``_vector_clocks`` walks them twice:
over every synchronisation event for happens-before (the long Python loop, in a
background thread), and over fork/join and hand-offs only for the *hybrid* order
that ``inconsistent_locking`` uses (few events). Meanwhile polars computes the locks
every unit holds, the nested acquires of the lock-order graph and the final lock
holders (``_locks``), and the access table. The results are small tables: per unit
the changes of its own epoch, hybrid clock version and held lock set (each merged
into the access table with a ``join_asof``), and one row per change of a clock
component (``changes``/``hchanges``: unit, other unit, position, new value). Only
``data_race`` needs ``changes``; the other three start before the long walk ends.
The FastTrack checks are then joins over the accesses:

* an access against the last write before it (write-read, write-write), and
* a read against the next write after it (read-write: the reads a write must check
  are exactly the reads whose next write it is),

each ordered iff the earlier access's epoch is at most what the later access's unit
knows of the earlier unit at that point (one more ``join_asof`` on ``changes``).
Like FastTrack, this finds exactly the first race on each variable and every access
that races with the latest conflicting access; see ``docs/predictive.md``.

``predictive`` runs all four analyses on one shared pass; it is the entry the
registry (``tracelens.analyze.ANALYSES``) uses.
"""

from __future__ import annotations

import functools
import threading
import weakref
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from typing import Any, Final

import polars as pl

from tracelens import schema as s
from tracelens.analyze import parallel
from tracelens.analyze.findings import (
    ERROR,
    EVENT_DTYPE,
    FINDING_SCHEMA,
    SITE_DTYPE,
    with_lists,
)
from tracelens.analyze.parallel import Handover, Job

__all__ = [
    "LOCKS_STATED",
    "OP",
    "PREDICTIVE_KINDS",
    "G",
    "Tables",
    "clear_cache",
    "data_race",
    "empty_findings",
    "event_struct",
    "global_order",
    "predictive",
    "tables",
    "unit_word",
]

#: The loaded trace names the operation column "op" (the trace file's key is ``s.OP``).
OP: Final = "op"

#: Column holding a trace-wide order key: ``pid << 40 | seq``. Events of one process
#: keep their sequence order; processes (which share no memory) follow each other.
G: Final = "_g"

#: Column holding a unit's dense integer id (``Tables.units``).
U: Final = "_u"

#: Column identifying a variable (its process and name) by one Int64.
V: Final = "_v"

#: The kinds ``predictive`` yields.
PREDICTIVE_KINDS: Final = ("data_race", "inconsistent_locking", "lock_order_inversion", "deadlock")

#: Kinds whose events carry the lock set their unit held (``Tables.locksets``, internal
#: locks included), also when it is empty: ``analyze`` need not look them up.
LOCKS_STATED: Final = ("data_race", "inconsistent_locking")

_SYNC_OPS: Final = (s.Op.ACQUIRE, s.Op.RELEASE, s.Op.FORK, s.Op.JOIN, s.Op.SEND, s.Op.RECV)
_ACQ, _REL, _FORK, _JOIN, _SEND, _RECV = range(6)


def global_order() -> pl.Expr:
    """The ``G`` key: monotone in ``(pid, seq)``, one Int64 to sort and join on."""
    return (pl.col(s.PID).cast(pl.Int64) * (1 << 40) + pl.col(s.SEQ).cast(pl.Int64)).alias(G)


def unit_word(unit: pl.Expr) -> pl.Expr:
    """``"task"`` for asyncio task units (``a<n>``, maybe ``<pid>/a<n>``), else ``"thread"``."""
    bare = unit.str.split("/").list.last()
    return (
        pl.when(bare.str.starts_with(s.TASK_UNIT_PREFIX))
        .then(pl.lit("task"))
        .otherwise(pl.lit("thread"))
    )


def empty_findings() -> pl.LazyFrame:
    """A findings frame with no rows."""
    return pl.LazyFrame(schema=FINDING_SCHEMA)


def _op_in(ops: tuple[str, ...] | frozenset[str]) -> pl.Expr:
    return pl.col(OP).cast(pl.String).is_in(list(ops))


# --- the sequential pass over synchronisation events -------------------------------------


@dataclass(frozen=True, slots=True)
class Tables:
    """What the one pass over the synchronisation events produced (``tables``).

    Attributes:
        units: ``U`` (dense Int32 id) -> ``unit`` (name), every unit of the trace.
        acc: One row per access (read/write) to a shared variable (one that two units
            or more access, at least one writing: no other can race), sorted by ``G``:
            ``G``, ``pid``, ``var``, ``V`` (the variable as one Int64), ``U``, ``w`` (a
            write), ``ts``, ``file``, ``line``, ``func``, and the state of its unit
            then: ``epoch`` (own happens-before clock component), ``hepoch`` and
            ``hver`` (own component
            and version of the hybrid clock: fork/join and hand-off edges only;
            accesses with the same unit and ``hver`` share one hybrid clock) and
            ``ls`` (id of the held lock set).
        changes: (a property) One row per change of a happens-before clock
            component: ``U``, ``other``, ``G``, ``known`` (what unit ``U`` now knows of
            unit ``other``); a missing component is 0. Sorted by ``G``. Only
            ``data_race`` needs it: the other analyses can run while it is computed.
        hchanges: The same for the hybrid clocks.
        locksets: ``ls`` -> ``locks`` (sorted lock names); id 0 is the empty set.
        holders: For every lock held at the end of the trace, who holds it and the
            ``G`` of the acquire.
        acquires: One row per distinct nested acquire (``unit``, held lock ``a``,
            acquired lock ``b``, ``held`` set, ``ga``/``gb``: ``G`` of both acquires,
            ``n``: how often).
    """

    units: pl.DataFrame
    acc: pl.DataFrame
    hchanges: pl.DataFrame
    locksets: pl.DataFrame
    holders: dict[str, tuple[str, int]]
    acquires: list[dict[str, Any]]
    #: ``changes``, once the happens-before walk (which may still run in a background
    #: thread when ``tables`` returns) is done.
    pending_changes: Callable[[], pl.DataFrame]

    @property
    def changes(self) -> pl.DataFrame:
        """See the class docstring; waits for the happens-before walk if needed."""
        return self.pending_changes()


# events LazyFrame (by identity) -> its tables. A LazyFrame is immutable, so its
# identity names its data; the entry goes when the frame is garbage-collected.
_CACHE: dict[tuple[int, bool], tuple[weakref.ref[pl.LazyFrame], Tables]] = {}
_CACHE_LOCK = threading.Lock()


def clear_cache() -> None:
    """Forget the tables computed so far (benchmarks time the pass itself)."""
    with _CACHE_LOCK:
        _CACHE.clear()


def tables(events: pl.LazyFrame, *, internal_locks: bool = True, cache: bool = True) -> Tables:
    """The shared pass over the synchronisation events, computed once per events frame.

    Every predictive analysis asks for this; the first call collects the
    synchronisation events and the accesses and walks the former in Python, later
    calls with the same ``events`` object (and ``internal_locks``) get the same tables.

    Args:
        events: The loaded trace (contract columns, sorted by ``(pid, seq)``).
        internal_locks: Whether internal locks count in held lock sets, the lock-order
            graph and the final holders (happens-before always follows them).
        cache: Keep the result for later calls (an earlier cached result is used
            either way).

    Returns:
        The tables, see ``Tables``.
    """
    key = (id(events), internal_locks)
    with _CACHE_LOCK:
        hit = _CACHE.get(key)
    if hit is not None and hit[0]() is events:
        return hit[1]
    t = _compute(events, internal_locks=internal_locks)
    if not cache:
        return t
    try:
        ref = weakref.ref(events, lambda _r, k=key: _CACHE.pop(k, None))  # type: ignore[misc]
    except TypeError:  # not weak-referenceable: do not cache
        return t
    with _CACHE_LOCK:
        _CACHE[key] = (ref, t)
    return t


#: Up to this many distinct locks, held lock sets are bit masks (``WORD_BITS`` locks per
#: Int64 column) computed in polars; beyond, the Python pass tracks them (as Python ints).
MAX_MASK_LOCKS = 16 * 63


def _compute(events: pl.LazyFrame, *, internal_locks: bool) -> Tables:
    n_events = events.select(pl.len()).collect().item()
    fork_join = pl.col(OP).cast(pl.String).is_in([s.Op.FORK, s.Op.JOIN])
    names = sorted(
        pl.concat(
            [
                events.select(pl.col(s.UNIT).cast(pl.String)),
                events.filter(fork_join).select(pl.col(s.OBJ).cast(pl.String).alias(s.UNIT)),
            ]
        )
        .drop_nulls()
        .unique()
        .collect()[s.UNIT]
        .to_list()
    )
    ids = list(range(len(names)))
    # unit ids: the physical codes of an Enum with the sorted names (cheaper than a
    # string replace over every event; all names are categories, nulls stay null)
    uid = pl.col(s.UNIT).cast(pl.String).cast(pl.Enum(names)).to_physical().cast(pl.Int32)
    obj = pl.col(s.OBJ).cast(pl.String)
    sync = (
        events.filter(_op_in(_SYNC_OPS))
        .select(
            global_order(),
            pl.col(OP).cast(pl.String).replace_strict(list(_SYNC_OPS), range(6)).alias(OP),
            uid.alias(U),
            obj,
            # objects as ints (dict keys in the loop; Python strings are slow to fetch)
            obj.cast(pl.Categorical).to_physical().cast(pl.Int64).alias("_o"),
            pl.when(fork_join)
            .then(obj.replace_strict(names, ids, default=None, return_dtype=pl.Int32))
            .alias("_ou"),
            pl.col(s.MSG),
            pl.col(s.INTERNAL).fill_null(False),
        )
        .sort(G)
        .collect()
    )
    # The hybrid order: fork/join and hand-offs only (few events), walked before the
    # long walk starts (the two would share the GIL).
    n = len(names)
    hybrid = _vector_clocks(
        sync.filter(pl.col(OP).is_in([_FORK, _JOIN, _SEND, _RECV])), n, versions=True
    )
    # Happens-before over every synchronisation event: the long Python walk. It runs in
    # a background thread (``Tables.changes`` waits for it), so that the analyses that
    # do not need it (polars) start meanwhile; on big traces it is waited for here, so
    # that its lists and those analyses' working sets do not add up.
    hb_walk = Job(functools.partial(_hb_changes, sync, n), name="tracelens-hb")
    # The accesses, collected in the background while the walk runs in Python.
    # Only shared variables (two units or more, a write) can race or break the lock-set
    # discipline: the others (thread-local, read-only) are dropped here.
    accesses = events.filter(_op_in(s.MEMORY_OPS)).select(
        global_order(),
        pl.col(s.PID).cast(pl.Int64),
        pl.col(s.VAR).cast(pl.String),
        # the variable as one Int64 (pid, string code): a cheap key to join on
        (
            pl.col(s.PID).cast(pl.Int64) * (1 << 32)
            + pl.col(s.VAR).cast(pl.String).cast(pl.Categorical).to_physical().cast(pl.Int64)
        ).alias(V),
        uid.alias(U),
        (pl.col(OP).cast(pl.String) == s.Op.WRITE).alias("w"),
        pl.col(s.TS).cast(pl.Int64),
        pl.col(s.FILE).cast(pl.String),
        pl.col(s.LINE).cast(pl.Int64),
        pl.col(s.FUNC).cast(pl.String),
    )
    shared_vars = (
        accesses.group_by(V)
        .agg(((pl.col(U).n_unique() > 1) & pl.col("w").any()).alias("_shared"))
        .filter("_shared")
        .select(V)
    )
    acc_job = accesses.join(shared_vars, on=V, how="semi", maintain_order="left").collect(
        background=True
    )
    obj_names = dict(
        sync.lazy()
        .filter(pl.col("_o").is_not_null())
        .group_by("_o")
        .agg(pl.col(s.OBJ).first())
        .collect()
        .iter_rows()
    )
    lock_ev = sync.filter(
        pl.col(OP).is_in([_ACQ, _REL]) & (pl.lit(internal_locks) | ~pl.col(s.INTERNAL))
    ).select(G, OP, U, "_o")
    lock_codes = sorted(lock_ev["_o"].unique().to_list(), key=lambda o: obj_names.get(o, ""))
    if len(lock_codes) <= MAX_MASK_LOCKS:
        lseg, locksets, holders, acquires = _locks(lock_ev, lock_codes, obj_names)
    else:
        lw = _walk_locks(lock_ev, n, obj_names)
        lseg = _frame(lw.lseg, [(U, pl.Int32), (G, pl.Int64), ("ls", pl.Int64)])
        locksets, holders, acquires = lw.locksets, lw.holders, lw.acquires
    i32, i64 = pl.Int32, pl.Int64
    # The happens-before epoch: 1 + the unit's releases, forks and sends so far, + the
    # times it was joined (as ``_vector_clocks`` counts them).
    ou_ok = pl.col("_ou").is_not_null()
    op = pl.col(OP)
    epochs = (
        pl.concat(
            [
                sync.filter(op.is_in([_REL, _SEND]) | ((op == _FORK) & ou_ok)).select(U, G),
                sync.filter((op == _JOIN) & ou_ok).select(pl.col("_ou").alias(U), G),
            ]
        )
        .sort(G)
        .with_columns((pl.int_range(pl.len()).over(U) + 2).cast(i64).alias("epoch"))
    )
    del sync
    # Each access takes its unit's latest epoch, hybrid clock and held lock set before
    # it: one as-of join per kind of change (each sorted by ``G`` already); before a
    # unit's first change, the defaults.
    hsegs = _frame(hybrid.segs, [(U, i32), (G, i64), ("hepoch", i64), ("hver", i64)])
    defaults = {"epoch": 1, "hepoch": 1, "hver": 0, "ls": 0}
    acc = acc_job.fetch_blocking()
    if not acc[G].is_sorted():  # the contract says sorted by (pid, seq); be safe
        acc = acc.sort(G)
    lacc = acc.lazy()
    for changes in (epochs, hsegs, lseg):
        lacc = lacc.join_asof(
            changes.lazy().rename({G: "_sg"}),
            left_on=G,
            right_on="_sg",
            by=U,
            check_sortedness=False,
        ).drop("_sg")
    acc = lacc.with_columns(pl.col(c).fill_null(v) for c, v in defaults.items()).collect()
    if n_events > parallel.PARALLEL_MAX_EVENTS:
        hb_walk.result()
    return Tables(
        units=pl.DataFrame({U: ids, s.UNIT: names}, schema={U: i32, s.UNIT: pl.String}),
        acc=acc,
        pending_changes=hb_walk.result,
        hchanges=_frame(hybrid.changes, _CHANGE_COLUMNS),
        locksets=pl.DataFrame(
            {"ls": list(range(len(locksets))), "locks": locksets},
            schema={"ls": pl.Int64, "locks": pl.List(pl.String)},
        ),
        holders={k: (names[v[0]], v[1]) for k, v in holders.items()},
        acquires=[{**a, "unit": names[a["unit"]]} for a in acquires],
    )


#: Bits of a held-lock mask per Int64 word (the sign bit stays clear).
WORD_BITS = 63


def _locks(
    lock_ev: pl.DataFrame, codes: list[int], obj_names: dict[int, str]
) -> tuple[pl.DataFrame, list[list[str]], dict[str, tuple[int, int]], list[dict[str, Any]]]:
    """Held lock sets, final holders and nested acquires, vectorised.

    A unit holds a lock iff the lock's last event is an acquire by that unit. So every
    lock event changes at most two held sets: the previous acquirer loses the lock
    (unless it acquires it again), the acquirer gains it. With one bit per lock, a
    unit's held set is the running sum of its gains and losses: one Int64 column per
    ``WORD_BITS`` locks.

    Args:
        lock_ev: The tracked acquire/release events (``G``, ``OP``, ``U``, ``_o``), in
            trace order.
        codes: The lock codes (``_o``), sorted by lock name: lock ``i`` is bit
            ``i % WORD_BITS`` of word ``i // WORD_BITS``.
        obj_names: Lock code -> name.

    Returns:
        ``(U, G, ls)`` rows (the held set from ``G`` on), the lock sets by id, the
        final holders and the nested acquires, as ``_walk_locks`` gives them.
    """
    i64 = pl.Int64
    names = [obj_names.get(c, "") for c in codes]
    n_words = max(1, -(-len(codes) // WORD_BITS))
    words = [f"_m{j}" for j in range(n_words)]
    ev = lock_ev.with_columns(
        pl.col("_o")
        .replace_strict(codes, [1 << (i % WORD_BITS) for i in range(len(codes))], return_dtype=i64)
        .alias("_bit"),
        pl.col("_o")
        .replace_strict(codes, [i // WORD_BITS for i in range(len(codes))], return_dtype=i64)
        .alias("_word"),
        pl.when(pl.col(OP) == _ACQ).then(pl.col(U)).shift(1).over("_o").alias("_prev"),
    )
    acq = pl.col(OP) == _ACQ
    again = acq & (pl.col(U) == pl.col("_prev")).fill_null(False)
    deltas = pl.concat(
        [
            ev.filter(pl.col("_prev").is_not_null() & ~again).select(
                pl.col("_prev").alias(U), G, "_word", (-pl.col("_bit")).alias("_d")
            ),
            ev.filter(acq & ~again).select(U, G, "_word", pl.col("_bit").alias("_d")),
        ]
    ).sort(G, maintain_order=True)
    held = deltas.select(
        U,
        G,
        *(
            pl.when(pl.col("_word") == j).then(pl.col("_d")).otherwise(0).cum_sum().over(U).alias(m)
            for j, m in enumerate(words)
        ),
    )
    zero = pl.DataFrame([pl.Series(m, [0], dtype=i64) for m in words])
    masks = pl.concat([zero, held.select(words).unique().sort(words[::-1])]).unique(
        maintain_order=True
    )
    masks = masks.with_row_index("ls").with_columns(pl.col("ls").cast(i64))
    held = held.join(masks, on=words, how="left", maintain_order="left")

    locksets = [
        _mask_names(sum(m << (j * WORD_BITS) for j, m in enumerate(row)), names)
        for row in masks.select(words).iter_rows()
    ]
    lseg = held.select(U, G, "ls")
    last = ev.group_by("_o").agg(pl.col(OP, U, G).sort_by(G).last()).filter(acq)
    holders = {obj_names.get(o, ""): (u, g) for o, _, u, g in last.iter_rows()}
    # Nested acquires, of which there are none unless some unit at some point holds two
    # locks or more (two bits set in its mask words).
    two = pl.sum_horizontal(pl.col(m) != 0 for m in words) >= 2
    for m in words:
        two = two | ((pl.col(m) & (pl.col(m) - 1)) != 0)
    acquires = (
        _nested_acquires(ev.filter(acq), held, words, codes, obj_names, locksets)
        if held.select(two.any()).item()
        else []
    )
    return lseg, locksets, holders, acquires


def _nested_acquires(
    acq: pl.DataFrame,
    held: pl.DataFrame,
    words: list[str],
    codes: list[int],
    obj_names: dict[int, str],
    locksets: list[list[str]],
) -> list[dict[str, Any]]:
    """The distinct nested acquires (``Tables.acquires``) of ``_locks``.

    Args:
        acq: The acquire events of ``_locks`` (with ``_bit`` and ``_word``).
        held: Each unit's held set (mask words and ``ls``) from each ``G`` on.
        words: The mask word columns.
        codes: The lock codes, in bit order.
        obj_names: Lock code -> name.
        locksets: Lock set id -> names.
    """
    i64 = pl.Int64
    # the held set just before each acquire, one edge per other lock held
    before = (
        acq.select(U, G, "_o", "_bit", "_word")
        .join_asof(
            held.rename({G: "_hg"}),
            left_on=G,
            right_on="_hg",
            by=U,
            allow_exact_matches=False,
            check_sortedness=False,
        )
        .filter(pl.col("ls").is_not_null() & (pl.col("ls") != 0))
        .with_columns(  # the other locks held: the acquired one's bit cleared
            pl.when(pl.col("_word") == j)
            .then(pl.col(m) & ~pl.col("_bit"))
            .otherwise(pl.col(m))
            .alias(m)
            for j, m in enumerate(words)
        )
    )
    acquires: list[dict[str, Any]] = []
    if before.height:
        bits = pl.DataFrame(
            {"_b": list(range(WORD_BITS)), "_bbit": [1 << b for b in range(WORD_BITS)]},
            schema={"_b": i64, "_bbit": i64},
        )
        held_locks = pl.concat(
            [
                before.filter(pl.col(m) != 0)
                .select(U, G, "_o", "ls", pl.col(m).alias("_mw"))
                .join(bits, how="cross")
                .filter((pl.col("_mw") & pl.col("_bbit")) != 0)
                .select(
                    U,
                    G,
                    "_o",
                    "ls",
                    (pl.col("_b") + j * WORD_BITS)
                    .replace_strict(range(len(codes)), codes, return_dtype=i64)
                    .alias("_a"),
                )
                for j, m in enumerate(words)
            ]
        )
        edges = (
            held_locks.sort(G)
            .join_asof(
                acq.select(U, pl.col("_o").alias("_a"), pl.col(G).alias("ga")),
                left_on=G,
                right_on="ga",
                by=[U, "_a"],
                allow_exact_matches=False,
                check_sortedness=False,
            )
            .group_by(U, "_a", "_o", "ls")
            .agg(pl.col("ga", G).sort_by(G).first(), pl.len().alias("n"))
            .sort(G, "_a")
        )
        for u, a, b, ls, ga, gb, n in edges.iter_rows():
            acquires.append(
                {
                    "unit": u,
                    "a": obj_names.get(a, ""),
                    "b": obj_names.get(b, ""),
                    "held": locksets[ls],
                    "ga": ga,
                    "gb": gb,
                    "n": n,
                }
            )
    return acquires


def _mask_names(mask: int, names: list[str]) -> list[str]:
    """The locks of a held-lock mask (bit ``i`` is ``names[i]``), sorted by name.

    Visits the set bits only: a trace can have thousands of locks and as many masks.
    """
    held = []
    while mask:
        low = mask & -mask
        held.append(names[low.bit_length() - 1])
        mask ^= low
    return sorted(held)


def _values(ser: pl.Series, blank: Any) -> list[Any]:
    """``ser`` as a list; ``[blank] * len`` without conversion when it is all null or ``blank``."""
    if ser.null_count() == ser.len() or (blank is False and not ser.any()):
        return [blank] * ser.len()
    return ser.to_list()


def _frame(flat: list[int], columns: list[tuple[str, Any]]) -> pl.DataFrame:
    """Columns from a flat list of rows (``[a0, b0, a1, b1, ...]``)."""
    k = len(columns)
    ser = pl.Series(flat, dtype=pl.Int64)
    return pl.DataFrame(
        [ser.gather_every(k, i).cast(dt).alias(name) for i, (name, dt) in enumerate(columns)]
    )


@dataclass(slots=True)
class _Clocks:
    changes: list[int]  # u, other, g, known: a clock component changed
    segs: list[int]  # u, g, epoch, version: u's clock from g on (``versions`` only)


#: Columns of ``Tables.changes`` and ``Tables.hchanges`` (``_Clocks.changes`` as a frame).
_CHANGE_COLUMNS: Final = [(U, pl.Int32), ("other", pl.Int32), (G, pl.Int64), ("known", pl.Int64)]


def _hb_changes(sync: pl.DataFrame, n: int) -> pl.DataFrame:
    """``Tables.changes``: the happens-before walk over every synchronisation event."""
    with parallel.gc_paused():
        changes = _vector_clocks(sync, n, versions=False).changes
    return _frame(changes, _CHANGE_COLUMNS)


def _vector_clocks(sync: pl.DataFrame, n: int, *, versions: bool) -> _Clocks:
    """The vector-clock pass over synchronisation events, in trace order.

    Run twice per trace: over every synchronisation event (happens-before), and over
    fork/join and hand-offs only (the hybrid order of ``inconsistent_locking``, with
    ``versions``: a row in ``segs`` each time a unit's epoch or what it knows changes).

    Clocks are dicts ``{unit id: component}`` of the *other* units' components; a
    unit's own component (its epoch) is kept apart in ``ep``. Every transmission of
    a unit's clock (release, fork, send, and being joined) is followed by an
    increment of its epoch, so a unit that knows ``e`` of unit ``r`` knows all of
    ``r``'s clock up to its epoch ``e``: an acquire of a lock that ``r`` released at
    epoch ``e`` needs no join when the acquirer already knows ``e`` of ``r``. A
    release stores the releaser's clock itself (no copy); the unit copies it when it
    next changes (``shared``).

    Args:
        sync: Synchronisation events in trace order: ``G``, ``OP`` (``_ACQ``...),
            ``U``, ``_o`` (object code), ``_ou`` (unit id of a forked or joined unit),
            ``msg``.
        n: Number of units.
        versions: Emit ``segs``.
    """
    ep = [1] * n
    ver = [0] * n
    vc: list[dict[int, int]] = [{} for _ in range(n)]
    shared = [False] * n
    lock_vc: dict[int | None, tuple[int, int, dict[int, int]]] = {}
    stores: dict[Any, dict[int, int]] = {}  # (kind, obj[, msg]) -> merged clock
    ch: list[int] = []
    segs: list[int] = []
    ch_add, seg_add = ch.extend, segs.extend

    def join(u: int, r: int | None, e: int, d: dict[int, int], g: int) -> bool:
        """u learns ``d`` (and ``e`` of ``r``); whether anything changed."""
        c = vc[u]
        if shared[u]:
            c = vc[u] = dict(c)
            shared[u] = False
        changed = False
        if r is not None and r != u and c.get(r, 0) < e:
            c[r] = e
            ch_add((u, r, g, e))
            changed = True
        for k, v in d.items():
            if v > c.get(k, 0) and k != u:
                c[k] = v
                ch_add((u, k, g, v))
                changed = True
        return changed

    def bump(u: int, g: int) -> None:
        """u's clock (epoch or knowledge) changed at g: a new version."""
        ver[u] += 1
        seg_add((u, g, ep[u], ver[u]))

    def unit_edge(dst: int, src: int, g: int) -> None:
        """Fork or join: ``dst`` learns ``src``'s clock, then ``src`` starts a new epoch."""
        if join(dst, src, ep[src], vc[src], g) and versions:
            bump(dst, g)
        ep[src] += 1
        if versions:
            bump(src, g)

    def merge(key: Any, r: int, e: int, d: dict[int, int]) -> None:
        dst = stores.get(key)
        if dst is None:
            dst = stores[key] = dict(d)
            dst[r] = e
            return
        for k, v in d.items():
            if v > dst.get(k, 0):
                dst[k] = v
        if e > dst.get(r, 0):
            dst[r] = e

    for g, op, u, obj, ou, m in zip(
        sync[G].to_list(),
        sync[OP].to_list(),
        sync[U].to_list(),
        sync["_o"].to_list(),
        _values(sync["_ou"], None),
        _values(sync[s.MSG], None),
        strict=True,
    ):
        if op == _ACQ:
            lk = lock_vc.get(obj)
            if lk is not None:
                r, e, d = lk
                if r != u:
                    c = vc[u]
                    if c.get(r, 0) < e:
                        if shared[u]:
                            c = vc[u] = dict(c)
                            shared[u] = False
                        c[r] = e
                        ch_add((u, r, g, e))
                        knows = c.get  # bound once: the loop below runs for every component
                        for k, v in d.items():
                            if v > knows(k, 0) and k != u:
                                c[k] = v
                                ch_add((u, k, g, v))
                        if versions:
                            bump(u, g)
        elif op == _REL:
            lock_vc[obj] = (u, ep[u], vc[u])
            shared[u] = True
            ep[u] += 1
            if versions:
                bump(u, g)
        elif op == _SEND:
            d, e = vc[u], ep[u]
            merge((0, obj), u, e, d)  # every send on obj
            if m is None:
                merge((1, obj), u, e, d)  # the sends without a message id
            else:
                merge((2, obj, m), u, e, d)  # the sends of this message
            ep[u] = e + 1
            if versions:
                bump(u, g)
        elif op == _RECV:
            if m is not None and (2, obj, m) in stores:
                srcs = [stores[(2, obj, m)]]
                if (1, obj) in stores:
                    srcs.append(stores[(1, obj)])
            elif (0, obj) in stores:
                srcs = [stores[(0, obj)]]
            else:
                continue
            changed = False
            for d in srcs:
                changed = join(u, None, 0, d, g) or changed
            if changed and versions:
                bump(u, g)
        elif ou is None:
            continue
        elif op == _FORK:  # u starts ou: u's past flows into ou
            unit_edge(ou, u, g)
        else:  # u joins ou: ou's past flows into u
            unit_edge(u, ou, g)
    return _Clocks(changes=ch, segs=segs)


@dataclass(slots=True)
class _Held:
    lseg: list[int]  # u, g, ls: u's held lock set from g on
    locksets: list[list[str]]
    holders: dict[str, tuple[int, int]]
    acquires: list[dict[str, Any]]


def _walk_locks(lock_ev: pl.DataFrame, n: int, obj_names: dict[int, str]) -> _Held:
    """Held lock sets, final holders and nested acquires, in Python (many locks).

    What ``_locks`` computes in polars (same ``lock_ev``), for traces with more than
    ``MAX_MASK_LOCKS`` distinct locks: masks are Python ints, numbered in ``ls_ids``.
    """
    bits: dict[int | None, int] = {}
    lock_objs: list[int | None] = []
    held = [0] * n  # mask of held locks
    held_g: list[dict[int | None, int]] = [{} for _ in range(n)]  # lock -> G of its acquire
    holder: dict[int | None, tuple[int, int]] = {}
    ls_ids: dict[int, int] = {0: 0}
    nested: dict[tuple[int, int | None, int | None, int], list[int]] = {}
    lseg: list[int] = []

    def set_held(u: int, mask: int, g: int) -> None:
        held[u] = mask
        i = ls_ids.get(mask)
        if i is None:
            i = ls_ids[mask] = len(ls_ids)
        lseg.extend((u, g, i))

    for g, op, u, obj in zip(
        lock_ev[G].to_list(),
        lock_ev[OP].to_list(),
        lock_ev[U].to_list(),
        lock_ev["_o"].to_list(),
        strict=True,
    ):
        b = bits.get(obj)
        if b is None:
            b = bits[obj] = 1 << len(lock_objs)
            lock_objs.append(obj)
        if op == _ACQ:
            prev = holder.get(obj)
            if prev is not None and prev[0] != u:
                p = prev[0]
                held_g[p].pop(obj, None)
                set_held(p, held[p] & ~b, g)
            hg = held_g[u]
            if hg:
                mask = held[u]
                for a, ga in hg.items():
                    if a != obj:
                        key = (u, a, obj, mask)
                        hit = nested.get(key)
                        if hit is None:
                            nested[key] = [ga, g, 1]
                        else:
                            hit[2] += 1
            hg[obj] = g
            holder[obj] = (u, g)
            set_held(u, held[u] | b, g)
        else:
            prev = holder.pop(obj, None)
            owner = u if prev is None else prev[0]
            held_g[owner].pop(obj, None)
            set_held(owner, held[owner] & ~b, g)

    lock_names = [obj_names.get(o, "") if o is not None else "" for o in lock_objs]

    acquires = [
        {
            "unit": u,
            "a": obj_names.get(a),  # type: ignore[arg-type]
            "b": obj_names.get(b),  # type: ignore[arg-type]
            "held": _mask_names(mask, lock_names),
            "ga": ga,
            "gb": gb,
            "n": cnt,
        }
        for (u, a, b, mask), (ga, gb, cnt) in nested.items()
    ]
    return _Held(
        lseg=lseg,
        locksets=[_mask_names(mask, lock_names) for mask in ls_ids],
        holders={obj_names.get(k): v for k, v in holder.items()},  # type: ignore[misc,arg-type]
        acquires=acquires,
    )


def known(
    frame: pl.LazyFrame, changes: pl.DataFrame, *, unit: str, other: str, at: str, out: str
) -> pl.LazyFrame:
    """Add ``out``: what ``unit`` knew of ``other``'s clock at position ``at`` (0 if nothing).

    Args:
        frame: Rows with the columns ``unit``, ``other`` (unit ids) and ``at``.
        changes: ``Tables.changes`` or ``Tables.hchanges``.
        unit: Column naming the unit whose clock is looked at.
        other: Column naming the unit whose component is wanted.
        at: Column with the ``G`` position.
        out: Name of the new column.

    Returns:
        ``frame`` with ``out`` added (sorted by ``at``).
    """
    # one Int64 key for the pair (unit ids are Int32): a single ``by`` column is cheaper
    right = changes.lazy().select(
        _pair(pl.col(U), pl.col("other")).alias("_kk"),
        pl.col(G).alias("_kg"),
        pl.col("known").alias(out),
    )
    return (
        frame.with_columns(_pair(pl.col(unit), pl.col(other)).alias("_kk"))
        .sort(at)
        .join_asof(right, left_on=at, right_on="_kg", by="_kk", check_sortedness=False)
        .drop("_kg", "_kk")
        .with_columns(pl.col(out).fill_null(0))
    )


def _pair(a: pl.Expr, b: pl.Expr) -> pl.Expr:
    """Two unit ids (non-negative Int32) as one Int64."""
    return a.cast(pl.Int64) * (1 << 32) + b.cast(pl.Int64)


# --- rendering findings --------------------------------------------------------------------


def detail_columns() -> list[pl.Expr]:
    """The columns of an event that a finding shows, typed as ``EVENT_DTYPE`` wants."""
    return [
        global_order(),
        pl.col(s.SEQ).cast(pl.Int64),
        pl.col(s.TS).cast(pl.Int64),
        pl.col(s.PID).cast(pl.Int64),
        pl.col(s.UNIT).cast(pl.String),
        pl.coalesce(pl.col("unit_name").cast(pl.String), pl.col(s.UNIT)).alias("unit_name"),
        pl.col(OP).cast(pl.String),
        pl.coalesce(pl.col(s.VAR), pl.col(s.OBJ)).cast(pl.String).alias("target"),
        pl.col(s.VALUE).cast(pl.String),
        pl.col(s.FILE).cast(pl.String),
        pl.col(s.LINE).cast(pl.Int64),
        pl.col(s.FUNC).cast(pl.String),
    ]


def event_struct(prefix: str, role: pl.Expr) -> pl.Expr:
    """Build an ``EVENT_DTYPE`` struct from the columns ``<prefix><field>``.

    Args:
        prefix: Prefix of the detail columns (see ``detail_columns``) plus ``locks``.
        role: The role of the event in the finding.

    Returns:
        The struct expression.
    """
    fields = []
    for name, dtype in EVENT_DTYPE.to_schema().items():
        if name == "role":
            fields.append(role.cast(pl.String).alias(name))
        else:
            fields.append(pl.col(prefix + name).cast(dtype).alias(name))
    return pl.struct(fields)


def site_struct(prefix: str) -> pl.Expr:
    """A ``SITE_DTYPE`` struct from ``<prefix>file``, ``line``, ``func``."""
    return pl.struct(
        pl.col(prefix + "file").alias("file"),
        pl.col(prefix + "line").alias("line"),
        pl.col(prefix + "func").alias("func"),
    ).cast(SITE_DTYPE)


def where(prefix: str) -> pl.Expr:
    """``file:line`` of the event with the given column prefix."""
    return pl.format("{}:{}", pl.col(prefix + "file"), pl.col(prefix + "line"))


def who(prefix: str) -> pl.Expr:
    """``thread NAME`` or ``task NAME`` for the event with the given column prefix."""
    return pl.format("{} {}", unit_word(pl.col(prefix + "unit")), pl.col(prefix + "unit_name"))


def race_findings(
    pairs: pl.LazyFrame,
    events: pl.LazyFrame,
    t: Tables,
    *,
    kind: str,
    severity: str,
    tail: str,
) -> pl.LazyFrame:
    """Group instances (earlier access ``p_g``, later access ``e_g``) into findings.

    One finding per variable and pair of code sites (the earlier access's site
    first). Per group, the first instance (smallest ``e_g``, then latest ``p_g``)
    becomes ``events`` and the widest one in time (then the first) ``worst``; only
    those get their full event details, from ``events``.

    Args:
        pairs: Rows ``e_g``, ``p_g`` (unique pairs).
        events: The loaded trace.
        t: The tables (``acc`` for variables, sites and lock sets).
        kind: The finding kind.
        severity: Its severity.
        tail: End of the explanation sentence.

    Returns:
        ``FINDING_SCHEMA`` rows, sorted by variable and first occurrence.
    """
    info = t.acc.lazy().select(G, s.VAR, s.TS, s.FILE, s.LINE, s.FUNC)
    site = [s.FILE, s.LINE, s.FUNC]
    rows = (
        pairs.join(info.select(pl.all().name.prefix("e_")), left_on="e_g", right_on="e_" + G)
        .join(
            info.select(G, *site, s.TS).select(pl.all().name.prefix("p_")),
            left_on="p_g",
            right_on="p_" + G,
        )
        .with_columns((pl.col("e_ts") - pl.col("p_ts")).abs().alias("_gap"))
    )
    keys = ["e_" + s.VAR, *[f"p_{c}" for c in site], *[f"e_{c}" for c in site]]
    inst = pl.struct("e_g", "p_g")
    grouped = (
        rows.group_by(keys)
        .agg(
            pl.len().cast(pl.Int64).alias("count"),
            inst.sort_by(["e_g", "p_g"], descending=[False, True]).first().alias("_first"),
            inst.sort_by(["_gap", "e_g", "p_g"], descending=[True, False, True])
            .first()
            .alias("_worst"),
        )
        .collect()
    )
    if grouped.height == 0:
        return empty_findings()
    grouped = grouped.with_columns(
        pl.col("_first").struct.field("e_g").alias("fe"),
        pl.col("_first").struct.field("p_g").alias("fp"),
        pl.col("_worst").struct.field("e_g").alias("we"),
        pl.col("_worst").struct.field("p_g").alias("wp"),
    ).drop("_first", "_worst")
    gs = pl.concat([grouped[c] for c in ("fe", "fp", "we", "wp")]).unique()
    details = (
        events.filter(global_order().is_in(gs.implode()))
        .select(detail_columns())
        .join(t.acc.lazy().select(G, "ls"), on=G, how="left")
        .join(t.locksets.lazy(), on="ls", how="left")
        .with_columns(pl.col("locks").fill_null(pl.lit([], dtype=pl.List(pl.String))))
        .drop("ls")
        .collect()
        .lazy()
    )
    out = grouped.lazy()
    for col, prefix in (("fe", "e_"), ("fp", "p_"), ("we", "we_"), ("wp", "wp_")):
        d = details.select(pl.all().name.prefix(prefix))
        if prefix == "e_":  # the grouping keys already hold e_var, sites
            d = d.drop("e_file", "e_line", "e_func")
        elif prefix == "p_":
            d = d.drop("p_file", "p_line", "p_func")
        out = out.join(d, left_on=col, right_on=prefix + G, how="left")
    out = out.with_columns(pl.col("e_" + s.VAR).alias("e_target"))
    role = pl.format("previous {}", pl.col("p_op"))
    wrole = pl.format("previous {}", pl.col("wp_op"))
    expl = pl.format(
        "{} at {} by {}{}, previous {} at {} by {}{}, " + tail,
        pl.col("e_op"),
        where("e_"),
        who("e_"),
        _locks_note("e_locks"),
        pl.col("p_op"),
        where("p_"),
        who("p_"),
        _locks_note("p_locks"),
    )
    shown = with_lists(
        out.sort(["e_target", "fe"]).collect(),
        {
            "sites": [site_struct("p_"), site_struct("e_")],
            "events": [event_struct("p_", role), event_struct("e_", pl.col("e_op"))],
            "worst": [event_struct("wp_", wrole), event_struct("we_", pl.col("we_op"))],
        },
    )
    return (
        shown.lazy()
        .select(
            pl.lit(kind).alias("kind"),
            pl.lit(severity).alias("severity"),
            pl.col("e_target").alias("var"),
            pl.concat_list(pl.col("p_unit_name"), pl.col("e_unit_name")).alias("units"),
            "sites",
            pl.col("count"),
            "events",
            "worst",
            expl.alias("explanation"),
        )
        .cast(dict(FINDING_SCHEMA))  # type: ignore[arg-type]
        .collect()
        .lazy()
    )


def _locks_note(col: str) -> pl.Expr:
    locks = pl.col(col)
    return (
        pl.when(locks.list.len() > 0)
        .then(pl.format(" holding {}", locks.list.join(", ")))
        .otherwise(pl.lit(" holding no lock"))
    )


# --- data_race -------------------------------------------------------------------------------


#: Up to this many distinct held lock sets, whether two of them share a lock is looked up
#: in a table of all disjoint pairs (``disjoint_locksets``); beyond, it is tested row by
#: row (``apart``), and ``data_race`` skips its common-lock shortcut.
MAX_LOCKSET_PAIRS_SETS = 512


def disjoint_locksets(ids: list[int], t: Tables) -> pl.DataFrame:
    """Pairs ``(_la, _lb)`` of the given lock-set ids (``Tables.locksets``) that share
    no lock (both orders; quadratic in ``len(ids)``)."""
    sets = dict(zip(t.locksets["ls"].to_list(), t.locksets["locks"].to_list(), strict=True))
    bit: dict[str, int] = {}
    masks = {}
    for i in ids:
        m = 0
        for lk in sets[i]:
            m |= bit.setdefault(lk, 1 << len(bit))
        masks[i] = m
    la, lb = [], []
    for a, ma in masks.items():
        for b, mb in masks.items():
            if not ma & mb:
                la.append(a)
                lb.append(b)
    return pl.DataFrame({"_la": la, "_lb": lb}, schema={"_la": pl.Int64, "_lb": pl.Int64})


def apart(frame: pl.LazyFrame, a: str, b: str, t: Tables) -> pl.LazyFrame:
    """The rows of ``frame`` whose lock sets (ids in columns ``a`` and ``b``) share no lock.

    A semi join with the table of disjoint pairs when the ids are few; otherwise the
    two sets' locks are intersected row by row (the table would grow with the square).
    """
    ids = frame.select(pl.concat([pl.col(a), pl.col(b)]).unique()).collect().to_series()
    if ids.len() <= MAX_LOCKSET_PAIRS_SETS:
        pairs = disjoint_locksets(ids.to_list(), t).lazy()
        return frame.join(pairs, left_on=[a, b], right_on=["_la", "_lb"], how="semi")
    sets = t.locksets.lazy()
    return (
        frame.join(sets.rename({"ls": a, "locks": "_sa"}), on=a, how="left")
        .join(sets.rename({"ls": b, "locks": "_sb"}), on=b, how="left")
        .filter(pl.col("_sa").list.set_intersection(pl.col("_sb")).list.len() == 0)
        .drop("_sa", "_sb")
    )


def data_race(
    events: pl.LazyFrame,
    /,
    *,
    shared: Tables | None = None,
    on_pairs: Callable[[pl.DataFrame], None] | None = None,
) -> pl.LazyFrame:
    """Find happens-before data races (FastTrack epochs over vector clocks).

    One finding per variable and pair of code sites: the earlier access's site first.
    Each racy access is paired with the latest conflicting access that does not happen
    before it (the last write, or a read since that write); the first occurrence and
    the one with the widest time gap are kept as ``events`` and ``worst``.

    Args:
        events: The loaded trace (``Trace.events``, contract columns).
        shared: The tables of ``tables(events)``; computed (or taken from the cache)
            when not given.
        on_pairs: Called with the racy pairs (``e_g``, ``p_g``: ``G`` of the later and
            the earlier access) as soon as they are known, before the findings are
            built from them (``predictive`` hands their sites to
            ``inconsistent_locking`` this way, see ``race_sites``).

    Returns:
        ``FINDING_SCHEMA`` rows of kind ``data_race`` (severity ``error``).
    """
    t = shared if shared is not None else tables(events)
    acc = t.acc.lazy()
    writes = acc.filter(pl.col("w")).select(
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
    # (b) every read against the next write after it.
    next_w = (
        acc.filter(~pl.col("w"))
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
    if len(ids) <= MAX_LOCKSET_PAIRS_SETS:
        # (the table ``apart`` joins; its row-by-row test would cost more than it saves)
        sets_apart = disjoint_locksets(ids, t).lazy()
        on = ["_la", "_lb"]
        last_w = last_w.join(sets_apart, left_on=["ls", "p_ls"], right_on=on, how="semi")
        next_w = next_w.join(sets_apart, left_on=["p_ls", "e_ls"], right_on=on, how="semi")
    # The pairs need no clocks: made before asking for ``changes``, which may wait for
    # the happens-before walk.
    last_w, next_w = (f.lazy() for f in pl.collect_all([last_w, next_w]))
    a = (
        known(last_w, t.changes, unit=U, other="p_u", at=G, out="_k")
        .filter(pl.col("p_epoch") > pl.col("_k"))
        .select(pl.col(G).alias("e_g"), "p_g")
    )
    b = (
        known(next_w, t.changes, unit="e_u", other="p_u", at="e_g", out="_k")
        .filter(pl.col("p_epoch") > pl.col("_k"))
        .select("e_g", "p_g")
    )
    racy = pl.concat([a, b]).group_by("e_g").agg(pl.col("p_g").max())
    if on_pairs is not None:
        pairs = racy.collect()
        on_pairs(pairs)
        racy = pairs.lazy()
    return race_findings(
        racy, events, t, kind="data_race", severity=ERROR, tail="no synchronisation between them"
    )


def race_sites(pairs: pl.DataFrame, t: Tables) -> pl.DataFrame:
    """``var`` and ``sites`` (earlier access's site, later access's) of pairs of accesses.

    What ``inconsistent_locking(reported=...)`` reads of finding rows, for the pairs
    ``data_race`` hands to ``on_pairs``: one row per variable and pair of sites.
    """
    site = pl.struct(pl.col(s.FILE), pl.col(s.LINE), pl.col(s.FUNC)).cast(SITE_DTYPE)
    info = t.acc.lazy().select(G, s.VAR, site.alias("_site"))
    return (
        pairs.lazy()
        .join(info.select(pl.col(G).alias("e_g"), s.VAR, pl.col("_site").alias("_e")), on="e_g")
        .join(info.select(pl.col(G).alias("p_g"), pl.col("_site").alias("_p")), on="p_g")
        .select(s.VAR, "_p", "_e")
        .unique()
        .select(pl.col(s.VAR).alias("var"), pl.concat_list("_p", "_e").alias("sites"))
        .collect()
    )


# --- all four on one pass --------------------------------------------------------------------


def _collected(analysis: Any, events: pl.LazyFrame, t: Tables) -> pl.DataFrame:
    return analysis(events, shared=t).collect()  # type: ignore[no-any-return]


def predictive(events: pl.LazyFrame, /, *, kinds: Collection[str] | None = None) -> pl.LazyFrame:
    """``data_race``, ``inconsistent_locking``, ``lock_order_inversion`` and ``deadlock``.

    The four share one pass over the synchronisation events (``tables``), which is
    most of their cost; this is the registry's entry for them
    (``tracelens.analyze.ANALYSES``), its kinds ``PREDICTIVE_KINDS``. When both
    ``data_race`` and ``inconsistent_locking`` run, a lock-set finding that a data race
    already states (same variable and pair of code sites) is left out: two unlocked
    accesses unordered by happens-before are both, and the lock-set finding adds
    something only where happens-before (through incidental lock order) missed the
    race. ``inconsistent_locking`` skips those pairs before checking them.

    Args:
        events: The loaded trace (``Trace.events``, contract columns).
        kinds: The kinds wanted (default all four); the others are not computed.

    Returns:
        ``FINDING_SCHEMA`` rows of the kinds wanted.
    """
    parts = list(predictive_parts(events, kinds=kinds))
    return pl.concat(parts, how="vertical").lazy() if parts else empty_findings()


def predictive_parts(
    events: pl.LazyFrame, /, *, kinds: Collection[str] | None = None
) -> Iterator[pl.DataFrame]:
    """``predictive``'s rows, one frame per analysis as soon as it is ready, the data
    races first: ``tracelens.analyze.analyze`` turns a part into findings while the
    others are still computed."""
    # Imported here: those modules build on this one.
    from tracelens.analyze.deadlock import deadlock
    from tracelens.analyze.lockorder import lock_order_inversion
    from tracelens.analyze.lockset import inconsistent_locking

    wanted = [k for k in PREDICTIVE_KINDS if kinds is None or k in kinds]
    if not wanted:
        return
    # Not cached: the findings are computed eagerly, so the tables (the size of the
    # accesses) can go as soon as the last part is out, before other analyses run.
    t = tables(events, cache=False)
    n_events = events.select(pl.len()).collect().item()
    raced: Handover[pl.DataFrame] | None = None
    todo: list[Callable[[], pl.DataFrame]] = []
    if "data_race" in wanted:
        # It waits for the happens-before walk. As soon as its racy pairs are known it
        # hands their sites over, which the lock-set analysis asks for once its own
        # classes and keys are ready.
        handover: Handover[pl.DataFrame] = Handover()
        raced = handover

        def find_races() -> pl.DataFrame:
            try:
                return data_race(
                    events, shared=t, on_pairs=lambda p: handover.put(race_sites(p, t))
                ).collect()
            except BaseException as e:
                if not handover.done:
                    handover.fail(e)
                raise

        todo.append(find_races)
    others = {
        "inconsistent_locking": functools.partial(
            inconsistent_locking, reported=raced.get if raced is not None else None
        ),
        "lock_order_inversion": lock_order_inversion,
        "deadlock": deadlock,
    }
    todo += [functools.partial(_collected, others[k], events, t) for k in wanted if k in others]
    if n_events > parallel.PARALLEL_MAX_EVENTS:  # one after the other (memory)
        for task in todo:
            yield task()
    else:
        jobs = [Job(task, name="tracelens-predictive") for task in todo]
        for job in jobs:
            yield job.result()
