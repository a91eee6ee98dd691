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
events go through the sequential vector-clock pass (``sync_pass``, a Python loop:
the only inherently sequential step, hence the only ``collect``). It produces two
small tables: one row per synchronisation event with the unit's own epoch after it
(``seg``), and one row per change of a clock component (``changes``: unit, other unit,
position, new value). Every access then finds its epoch with a ``join_asof`` on its
unit, and the FastTrack checks are joins against the accesses themselves:

* an access against the last write before it (write-read, write-write), and
* a read against the next write after it (read-write: the reads a write must check
  are exactly the reads whose next write it is),

each ordered iff the earlier access's epoch is at most what the later access's unit
knows of the earlier unit at that point (one more ``join_asof`` on ``changes``).
Like FastTrack, this finds exactly the first race on each variable and every access
that races with the latest conflicting access; see ``docs/predictive.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import polars as pl

from tracelens import schema as s
from tracelens.analyze.findings import ERROR, EVENT_DTYPE, FINDING_SCHEMA, SITE_DTYPE

__all__ = [
    "OP",
    "G",
    "SyncTables",
    "data_race",
    "empty_findings",
    "event_struct",
    "global_order",
    "sync_pass",
    "unit_word",
]

#: The loaded trace names the operation column "op" (the trace file's key is ``s.OP``).
OP: Final = "op"

#: Column holding a trace-wide order key: ``pid << 40 | seq``. Events of one process
#: keep their sequence order; processes (which share no memory) follow each other.
G: Final = "_g"

_SYNC_OPS: Final = (s.Op.ACQUIRE, s.Op.RELEASE, s.Op.FORK, s.Op.JOIN, s.Op.SEND, s.Op.RECV)
_HYBRID_EDGES: Final = frozenset({s.Op.FORK, s.Op.JOIN, s.Op.SEND, s.Op.RECV})


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
class SyncTables:
    """What the vector-clock pass over the synchronisation events produced.

    Attributes:
        seg: One row per synchronisation event: ``unit``, ``G``, ``epoch`` (the unit's
            own clock component after the event), ``ver`` (how many times the
            unit's clock changed so far: accesses with the same unit and ``ver`` share
            one clock) and ``ls`` (id of the set of locks the unit holds after it).
            Before its first row, a unit has epoch 1, ``ver`` 0 and holds nothing
            (``ls`` 0).
        changes: One row per change of a clock component: ``unit``, ``other``, ``G``,
            ``known`` (what ``unit`` now knows of ``other``'s clock); a missing
            component is 0.
        locksets: ``ls`` -> ``locks`` (sorted lock names); id 0 is the empty set.
        holders: For every lock held at the end of the trace, who holds it and the
            ``G`` of the acquire.
        acquires: Only with ``lock_order``: one row per distinct nested acquire
            (unit, held lock ``a``, acquired lock ``b``, ``held`` set, ``ga``/``gb``: ``G``
            of both acquires, ``n``: how often).
    """

    seg: pl.DataFrame
    changes: pl.DataFrame
    locksets: pl.DataFrame
    holders: dict[str, tuple[str, int]]
    acquires: list[dict[str, Any]]


def sync_pass(
    events: pl.LazyFrame,
    *,
    lock_edges: bool = True,
    internal_locks: bool = True,
    lock_order: bool = False,
) -> SyncTables:
    """Run the vector clocks over the synchronisation events (collects them).

    This is the one sequential step: a clock depends on every earlier release, send
    and fork, so the synchronisation events are collected (only those rows and
    columns) and walked in trace order in Python. Accesses never enter the loop.

    Args:
        events: The loaded trace (contract columns).
        lock_edges: Whether release -> acquire is a happens-before edge (``False``
            for the hybrid lock-set analysis, which orders only by fork/join and
            hand-offs).
        internal_locks: Whether internal locks count in the held lock sets.
        lock_order: Also record nested acquires for the lock-order graph.

    Returns:
        The tables, see ``SyncTables``.
    """
    sync = (
        events.filter(_op_in(_SYNC_OPS))
        .select(
            global_order(),
            pl.col(OP).cast(pl.String),
            pl.col(s.UNIT),
            pl.col(s.OBJ),
            pl.col(s.MSG),
            pl.col(s.INTERNAL).fill_null(False),
        )
        .sort(G)
        .collect()
    )
    gs = sync[G].to_list()
    ops = sync[OP].to_list()
    units = sync[s.UNIT].to_list()
    objs = sync[s.OBJ].to_list()
    msgs = sync[s.MSG].to_list()
    internal = sync[s.INTERNAL].to_list()

    clocks: dict[str, dict[str, int]] = {}
    lock_vc: dict[str, dict[str, int]] = {}
    send_all: dict[str, dict[str, int]] = {}
    send_nomsg: dict[str, dict[str, int]] = {}
    send_msg: dict[tuple[str, int], dict[str, int]] = {}
    holder: dict[str, tuple[str, int]] = {}  # lock -> (unit, G of its acquire)
    held: dict[str, dict[str, int]] = {}  # unit -> {lock: G of acquire}, insertion order
    ls_ids: dict[tuple[str, ...], int] = {(): 0}
    ls_of_unit: dict[str, int] = {}
    version: dict[str, int] = {}
    nested: dict[tuple[Any, ...], dict[str, Any]] = {}

    ch_u: list[str] = []
    ch_o: list[str] = []
    ch_g: list[int] = []
    ch_v: list[int] = []
    sg_u: list[str] = []
    sg_g: list[int] = []
    sg_e: list[int] = []
    sg_l: list[int] = []
    sg_v: list[int] = []

    def clock(u: str) -> dict[str, int]:
        c = clocks.get(u)
        if c is None:
            c = clocks[u] = {u: 1}
        return c

    def join_into(u: str, c: dict[str, int], other: dict[str, int] | None, g: int) -> None:
        if not other:
            return
        for k, v in other.items():
            if c.get(k, 0) < v and k != u:
                c[k] = v
                version[u] = version.get(u, 0) + 1
                ch_u.append(u)
                ch_o.append(k)
                ch_g.append(g)
                ch_v.append(v)

    def merge(store: dict[Any, dict[str, int]], key: Any, c: dict[str, int]) -> None:
        d = store.get(key)
        if d is None:
            store[key] = dict(c)
        else:
            for k, v in c.items():
                if d.get(k, 0) < v:
                    d[k] = v

    def set_ls(u: str) -> None:
        h = held.get(u)
        key = tuple(sorted(h)) if h else ()
        i = ls_ids.get(key)
        if i is None:
            i = ls_ids[key] = len(ls_ids)
        ls_of_unit[u] = i

    ACQ, REL, FORK, JOIN, SEND, _ = _SYNC_OPS
    for i in range(len(gs)):
        op = ops[i]
        u = units[i]
        g = gs[i]
        obj = objs[i]
        c = clock(u)
        if op in (ACQ, REL):
            if op == ACQ:
                if lock_edges:
                    join_into(u, c, lock_vc.get(obj), g)
            else:
                if lock_edges:
                    lock_vc[obj] = dict(c)
                    c[u] += 1
                    version[u] = version.get(u, 0) + 1
            if internal_locks or not internal[i]:
                if op == ACQ:
                    prev = holder.get(obj)
                    if prev is not None and prev[0] != u:
                        held.get(prev[0], {}).pop(obj, None)
                        set_ls(prev[0])
                    h = held.setdefault(u, {})
                    if lock_order and h:
                        hkey = tuple(sorted(h))
                        for a, ga in h.items():
                            if a == obj:
                                continue
                            key = (u, a, obj, hkey)
                            hit = nested.get(key)
                            if hit is None:
                                nested[key] = {
                                    "unit": u,
                                    "a": a,
                                    "b": obj,
                                    "held": list(hkey),
                                    "ga": ga,
                                    "gb": g,
                                    "n": 1,
                                }
                            else:
                                hit["n"] += 1
                    h[obj] = g
                    holder[obj] = (u, g)
                    set_ls(u)
                else:
                    prev = holder.pop(obj, None)
                    owner = u if prev is None else prev[0]
                    held.get(owner, {}).pop(obj, None)
                    set_ls(owner)
        elif op == FORK:
            child = obj
            join_into(child, clock(child), c, g)
            c[u] += 1
            version[u] = version.get(u, 0) + 1
        elif op == JOIN:
            join_into(u, c, clocks.get(obj), g)
        elif op == SEND:
            merge(send_all, obj, c)
            m = msgs[i]
            if m is None:
                merge(send_nomsg, obj, c)
            else:
                merge(send_msg, (obj, m), c)
            c[u] += 1
            version[u] = version.get(u, 0) + 1
        else:  # RECV
            m = msgs[i]
            if m is not None and (obj, m) in send_msg:
                join_into(u, c, send_msg[(obj, m)], g)
                join_into(u, c, send_nomsg.get(obj), g)
            else:
                join_into(u, c, send_all.get(obj), g)
        sg_u.append(u)
        sg_g.append(g)
        sg_e.append(c[u])
        sg_l.append(ls_of_unit.get(u, 0))
        sg_v.append(version.get(u, 0))

    seg = pl.DataFrame(
        {s.UNIT: sg_u, G: sg_g, "epoch": sg_e, "ver": sg_v, "ls": sg_l},
        schema={s.UNIT: pl.String, G: pl.Int64, "epoch": pl.Int64, "ver": pl.Int64, "ls": pl.Int64},
    )
    changes = pl.DataFrame(
        {s.UNIT: ch_u, "other": ch_o, G: ch_g, "known": ch_v},
        schema={s.UNIT: pl.String, "other": pl.String, G: pl.Int64, "known": pl.Int64},
    ).sort(G)
    locksets = pl.DataFrame(
        {"ls": list(ls_ids.values()), "locks": [list(k) for k in ls_ids]},
        schema={"ls": pl.Int64, "locks": pl.List(pl.String)},
    )
    return SyncTables(seg, changes, locksets, dict(holder), list(nested.values()))


def known(
    frame: pl.LazyFrame, changes: pl.DataFrame, *, unit: str, other: str, at: str, out: str
) -> pl.LazyFrame:
    """Add ``out``: what ``unit`` knew of ``other``'s clock at position ``at`` (0 if nothing).

    Args:
        frame: Rows with the columns ``unit``, ``other`` and ``at``.
        changes: ``SyncTables.changes``.
        unit: Column naming the unit whose clock is looked at.
        other: Column naming the unit whose component is wanted.
        at: Column with the ``G`` position.
        out: Name of the new column.

    Returns:
        ``frame`` with ``out`` added (sorted by ``at``).
    """
    right = changes.lazy().select(
        pl.col(s.UNIT).alias("_ku"),
        pl.col("other").alias("_ko"),
        pl.col(G).alias("_kg"),
        pl.col("known").alias(out),
    )
    return (
        frame.sort(at)
        .join_asof(
            right,
            left_on=at,
            right_on="_kg",
            by_left=[unit, other],
            by_right=["_ku", "_ko"],
            check_sortedness=False,
        )
        .drop("_kg")
        .with_columns(pl.col(out).fill_null(0))
    )


def with_segments(accesses: pl.LazyFrame, seg: pl.DataFrame) -> pl.LazyFrame:
    """Give every access its unit's epoch, clock version and lock set (``epoch``, ``ver``, ``ls``).

    Args:
        accesses: Rows with ``unit`` and ``G``.
        seg: ``SyncTables.seg``.

    Returns:
        ``accesses`` with ``epoch`` and ``ls`` (sorted by ``G``).
    """
    right = (
        seg.lazy()
        .select(
            pl.col(s.UNIT), pl.col(G).alias("_sg"), pl.col("epoch"), pl.col("ver"), pl.col("ls")
        )
        .sort("_sg")
    )
    return (
        accesses.sort(G)
        .join_asof(right, left_on=G, right_on="_sg", by=s.UNIT, check_sortedness=False)
        .drop("_sg")
        .with_columns(
            pl.col("epoch").fill_null(1), pl.col("ver").fill_null(0), pl.col("ls").fill_null(0)
        )
    )


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


def attach(
    pairs: pl.LazyFrame, details: pl.LazyFrame, locksets: pl.DataFrame | None, key: str, prefix: str
) -> pl.LazyFrame:
    """Join an event's details (prefixed) onto ``pairs`` by its ``G`` in column ``key``.

    Args:
        pairs: Rows naming an event by its ``G``.
        details: ``detail_columns`` rows plus ``ls`` (lock-set id) when known.
        locksets: ``SyncTables.locksets`` to turn ``ls`` into lock names, or ``None``.
        key: Column of ``pairs`` holding the event's ``G``.
        prefix: Prefix for the attached columns.

    Returns:
        ``pairs`` with ``<prefix>...`` columns, ``<prefix>locks`` among them.
    """
    d = details
    if locksets is not None:
        d = d.join(locksets.lazy(), on="ls", how="left")
    else:
        d = d.with_columns(pl.lit([], dtype=pl.List(pl.String)).alias("locks"))
    d = d.with_columns(pl.col("locks").fill_null(pl.lit([], dtype=pl.List(pl.String))))
    d = d.select(pl.all().name.prefix(prefix))
    return pairs.join(d, left_on=key, right_on=prefix + G, how="left", maintain_order="left")


# --- data_race -------------------------------------------------------------------------------


def data_race(events: pl.LazyFrame, /) -> pl.LazyFrame:
    """Find happens-before data races (FastTrack epochs over vector clocks).

    One finding per variable and pair of code sites: the earlier access's site first.
    Each racy access is paired with the latest conflicting access that does not happen
    before it (the last write, or a read since that write); the first occurrence and
    the one with the widest time gap are kept as ``events`` and ``worst``.

    Args:
        events: The loaded trace (``Trace.events``, contract columns).

    Returns:
        ``FINDING_SCHEMA`` rows of kind ``data_race`` (severity ``error``).
    """
    t = sync_pass(events, lock_edges=True, internal_locks=True)
    acc = (
        with_segments(
            events.filter(_op_in(s.MEMORY_OPS)).select(
                global_order(),
                pl.col(s.PID).cast(pl.Int64),
                pl.col(s.VAR),
                pl.col(s.UNIT),
                (pl.col(OP).cast(pl.String) == s.Op.WRITE).alias("w"),
            ),
            t.seg,
        )
        .collect()
        .lazy()
    )  # used by several branches: computed once
    writes = acc.filter(pl.col("w")).select(
        s.PID,
        s.VAR,
        pl.col(G).alias("p_g"),
        pl.col(s.UNIT).alias("p_unit"),
        pl.col("epoch").alias("p_epoch"),
    )
    # (a) every access against the last write before it.
    last_w = (
        acc.select(G, s.PID, s.VAR, s.UNIT)
        .join_asof(
            writes.sort("p_g"),
            left_on=G,
            right_on="p_g",
            by=[s.PID, s.VAR],
            allow_exact_matches=False,
            check_sortedness=False,
        )
        .filter(pl.col("p_unit").is_not_null() & (pl.col("p_unit") != pl.col(s.UNIT)))
    )
    a = (
        known(last_w, t.changes, unit=s.UNIT, other="p_unit", at=G, out="_k")
        .filter(pl.col("p_epoch") > pl.col("_k"))
        .select(pl.col(G).alias("e_g"), "p_g")
    )
    # (b) every read against the next write after it.
    next_w = (
        acc.filter(~pl.col("w"))
        .select(
            pl.col(G).alias("p_g"),
            s.PID,
            s.VAR,
            pl.col(s.UNIT).alias("p_unit"),
            pl.col("epoch").alias("p_epoch"),
        )
        .join_asof(
            writes.select(
                s.PID, s.VAR, pl.col("p_g").alias("e_g"), pl.col("p_unit").alias("e_unit")
            ).sort("e_g"),
            left_on="p_g",
            right_on="e_g",
            by=[s.PID, s.VAR],
            strategy="forward",
            allow_exact_matches=False,
            check_sortedness=False,
        )
        .filter(pl.col("e_unit").is_not_null() & (pl.col("e_unit") != pl.col("p_unit")))
    )
    b = (
        known(next_w, t.changes, unit="e_unit", other="p_unit", at="e_g", out="_k")
        .filter(pl.col("p_epoch") > pl.col("_k"))
        .select("e_g", "p_g")
    )
    racy = pl.concat([a, b]).group_by("e_g").agg(pl.col("p_g").max())
    details = with_segments(
        events.filter(_op_in(s.MEMORY_OPS)).select(detail_columns()), t.seg
    ).drop("epoch", "ver")
    pairs = attach(attach(racy, details, t.locksets, "e_g", "e_"), details, t.locksets, "p_g", "p_")
    return _race_findings(
        pairs, kind="data_race", severity=ERROR, tail="no synchronisation between them"
    )


def _race_findings(pairs: pl.LazyFrame, *, kind: str, severity: str, tail: str) -> pl.LazyFrame:
    """Group (partner, access) pairs into findings per variable and site pair.

    Args:
        pairs: One row per instance: ``p_*`` (earlier access) and ``e_*`` (later) columns.
        kind: The finding kind.
        severity: Its severity.
        tail: End of the explanation sentence.

    Returns:
        ``FINDING_SCHEMA`` rows, sorted by variable and first occurrence.
    """
    role_p = pl.format("previous {}", pl.col("p_op"))
    ev = pl.concat_list(event_struct("p_", role_p), event_struct("e_", pl.col("e_op")))
    rows = pairs.with_columns(
        ev.alias("_ev"),
        (pl.col("e_ts") - pl.col("p_ts")).abs().alias("_gap"),
    )
    keys = ["e_target", "p_file", "p_line", "p_func", "e_file", "e_line", "e_func"]
    first = [
        pl.col(c).sort_by("e_g").first().alias(c)
        for c in (
            "e_g",
            "p_op",
            "e_op",
            "p_unit",
            "e_unit",
            "p_unit_name",
            "e_unit_name",
            "p_locks",
            "e_locks",
        )
    ]
    grouped = rows.group_by(keys).agg(
        *first,
        pl.len().cast(pl.Int64).alias("count"),
        pl.col("_ev").sort_by("e_g").first().alias("events"),
        pl.col("_ev").sort_by(["_gap", "e_g"], descending=[True, False]).first().alias("worst"),
    )
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
    return (
        grouped.sort(["e_target", "e_g"])
        .select(
            pl.lit(kind).alias("kind"),
            pl.lit(severity).alias("severity"),
            pl.col("e_target").alias("var"),
            pl.concat_list(pl.col("p_unit_name"), pl.col("e_unit_name")).alias("units"),
            pl.concat_list(site_struct("p_"), site_struct("e_")).alias("sites"),
            pl.col("count"),
            pl.col("events"),
            pl.col("worst"),
            expl.alias("explanation"),
        )
        .cast(dict(FINDING_SCHEMA))
    )  # type: ignore[arg-type]


def _locks_note(col: str) -> pl.Expr:
    locks = pl.col(col)
    return (
        pl.when(locks.list.len() > 0)
        .then(pl.format(" holding {}", locks.list.join(", ")))
        .otherwise(pl.lit(" holding no lock"))
    )
