"""The vector-clock walk over synchronisation events, one method per edge kind.

FastTrack (Flanagan & Freund, PLDI 2009) in the terms of the paper: every unit ``u``
has a vector clock ``C_u``; its own component ``C_u(u)`` is its *epoch*. Each kind of
synchronisation event is one edge of happens-before, and one method of ``ClockWalk``:

==============  =====================================================================
event           what the walk does (``docs/predictive.md``)
==============  =====================================================================
``release``     the lock keeps the releaser's clock (``L_m := C_u``), then the
                releaser starts a new epoch (``C_u(u) += 1``)
``acquire``     the acquirer learns the lock's clock (``C_u := C_u ⊔ L_m``)
``fork``        the child learns the parent's clock; the parent starts a new epoch
``join``        the joiner learns the child's clock; the child starts a new epoch
``send``        the hand-off object keeps the join of every clock sent on it; the
                sender starts a new epoch
``receive``     the receiver learns the clock of the matching sends: those of the
                same message when it has one, else every send on the object
==============  =====================================================================

Every transmission of a unit's clock is followed by a new epoch of that unit, so a
unit that knows epoch ``e`` of unit ``r`` knows all of ``r``'s clock up to ``e``: an
acquire of a lock that ``r`` released at epoch ``e`` needs no join when the acquirer
already knows ``e`` of ``r`` (the common case of a lock taken again and again).

The walk does not keep the clocks of every access: it emits one row per *change* of
a clock component (``changes``: unit, other unit, position ``G``, new value), which
the access tables join against (``known``). With ``versions`` it also emits a row each
time a unit's clock changes at all (``segments``: unit, ``G``, epoch, version), for
the hybrid order of ``inconsistent_locking``, where accesses of one clock version
share one clock.

Clocks are dicts ``{unit id: component}`` of the *other* units' components (a missing
component is 0); a unit's own component is kept apart in ``epoch``. A release stores
the releaser's dict itself, not a copy: the unit copies it the next time its clock
changes (``_own``), as clocks are read far more often than they change.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Final

import polars as pl

from tracelens import schema as s
from tracelens.analyze import columns as c

__all__ = [
    "CHANGE_COLUMNS",
    "EDGE_OPS",
    "OBJ_CODE",
    "OTHER_UNIT",
    "ClockWalk",
    "Clocks",
    "U",
    "known",
    "vector_clocks",
]

#: Column holding a unit's dense integer id (``Tables.units``).
U: Final = "_u"
#: Column holding a synchronisation object as an integer code.
OBJ_CODE: Final = "_o"
#: Column holding the unit id of a forked or joined unit.
OTHER_UNIT: Final = "_ou"

#: The synchronisation operations the walk follows, in the order of their codes
#: (the ``op`` column of the walk's input holds the index into this tuple).
EDGE_OPS: Final = (s.Op.ACQUIRE, s.Op.RELEASE, s.Op.FORK, s.Op.JOIN, s.Op.SEND, s.Op.RECV)
ACQUIRE, RELEASE, FORK, JOIN, SEND, RECEIVE = range(len(EDGE_OPS))

#: Columns of ``Clocks.changes`` as a frame (``Tables.changes``, ``Tables.hchanges``).
CHANGE_COLUMNS: Final = [(U, pl.Int32), ("other", pl.Int32), (c.G, pl.Int64), ("known", pl.Int64)]

Clock = dict[int, int]


@dataclass(slots=True)
class Clocks:
    """What a walk emits, as flat lists of Int64 rows.

    Attributes:
        changes: ``unit, other, G, known`` per change of a clock component.
        segments: ``unit, G, epoch, version`` per change of a unit's clock (only
            with ``versions``).
    """

    changes: list[int]
    segments: list[int]


class ClockWalk:
    """The vector clocks of ``n`` units, updated one synchronisation event at a time.

    Args:
        n: Number of units (ids ``0 .. n-1``).
        versions: Emit ``Clocks.segments``.
    """

    __slots__ = (
        "_shared",
        "changes",
        "clock",
        "epoch",
        "lock_release",
        "segments",
        "sent_all",
        "sent_anonymous",
        "sent_message",
        "version",
        "versions",
    )

    def __init__(self, n: int, *, versions: bool) -> None:
        self.epoch = [1] * n  # C_u(u)
        self.clock: list[Clock] = [{} for _ in range(n)]  # C_u, own component apart
        self._shared = [False] * n  # clock[u] is also a lock's: copy before changing it
        self.version = [0] * n
        self.versions = versions
        #: lock -> (releasing unit, its epoch then, its clock then): L_m
        self.lock_release: dict[int | None, tuple[int, int, Clock]] = {}
        #: object -> the join of every clock sent on it
        self.sent_all: dict[Hashable, Clock] = {}
        #: object -> the join of the clocks sent on it without a message id
        self.sent_anonymous: dict[Hashable, Clock] = {}
        #: (object, message id) -> the join of the clocks that sent that message
        self.sent_message: dict[Hashable, Clock] = {}
        self.changes: list[int] = []
        self.segments: list[int] = []

    # --- the edges ---------------------------------------------------------------------

    def acquire(self, u: int, lock: int | None, g: int) -> None:
        """``u`` acquires ``lock`` at ``g``: it learns the clock of the lock's last release."""
        last = self.lock_release.get(lock)
        if last is None:
            return
        r, e, released = last
        if r == u or self.clock[u].get(r, 0) >= e:  # already known: nothing to learn
            return
        clock = self._own(u)
        clock[r] = e
        add = self.changes.extend
        add((u, r, g, e))
        knows = clock.get
        for k, v in released.items():
            if v > knows(k, 0) and k != u:
                clock[k] = v
                add((u, k, g, v))
        if self.versions:
            self._new_version(u, g)

    def release(self, u: int, lock: int | None, g: int) -> None:
        """``u`` releases ``lock`` at ``g``: the lock keeps ``u``'s clock; a new epoch."""
        self.lock_release[lock] = (u, self.epoch[u], self.clock[u])
        self._shared[u] = True
        self._next_epoch(u, g)

    def fork(self, parent: int, child: int, g: int) -> None:
        """``parent`` starts ``child`` at ``g``: the parent's past flows into the child."""
        self._unit_edge(child, parent, g)

    def join(self, joiner: int, child: int, g: int) -> None:
        """``joiner`` joins ``child`` at ``g``: the child's past flows into the joiner."""
        self._unit_edge(joiner, child, g)

    def send(self, u: int, obj: int | None, msg: int | None, g: int) -> None:
        """``u`` hands ``msg`` (or no message id) over through ``obj`` at ``g``."""
        clock, e = self.clock[u], self.epoch[u]
        _merge(self.sent_all, obj, u, e, clock)
        if msg is None:
            _merge(self.sent_anonymous, obj, u, e, clock)
        else:
            _merge(self.sent_message, (obj, msg), u, e, clock)
        self._next_epoch(u, g)

    def receive(self, u: int, obj: int | None, msg: int | None, g: int) -> None:
        """``u`` receives from ``obj`` at ``g``: the matching sends happen before it."""
        sent = self.sent_message.get((obj, msg)) if msg is not None else None
        if sent is not None:
            sources = [sent]
            anonymous = self.sent_anonymous.get(obj)
            if anonymous is not None:
                sources.append(anonymous)
        else:
            every = self.sent_all.get(obj)
            if every is None:
                return
            sources = [every]
        changed = False
        for clock in sources:
            changed = self._learn(u, None, 0, clock, g) or changed
        if changed and self.versions:
            self._new_version(u, g)

    # --- helpers -----------------------------------------------------------------------

    def _own(self, u: int) -> Clock:
        """``u``'s clock, copied first if a lock still holds it."""
        clock = self.clock[u]
        if self._shared[u]:
            clock = self.clock[u] = dict(clock)
            self._shared[u] = False
        return clock

    def _learn(self, u: int, r: int | None, e: int, clock: Clock, g: int) -> bool:
        """``u`` learns ``clock`` (and epoch ``e`` of ``r``) at ``g``; whether it changed."""
        own = self._own(u)
        add = self.changes.extend
        changed = False
        if r is not None and r != u and own.get(r, 0) < e:
            own[r] = e
            add((u, r, g, e))
            changed = True
        for k, v in clock.items():
            if v > own.get(k, 0) and k != u:
                own[k] = v
                add((u, k, g, v))
                changed = True
        return changed

    def _unit_edge(self, dst: int, src: int, g: int) -> None:
        """``dst`` learns ``src``'s clock, then ``src`` starts a new epoch."""
        if self._learn(dst, src, self.epoch[src], self.clock[src], g) and self.versions:
            self._new_version(dst, g)
        self._next_epoch(src, g)

    def _next_epoch(self, u: int, g: int) -> None:
        self.epoch[u] += 1
        if self.versions:
            self._new_version(u, g)

    def _new_version(self, u: int, g: int) -> None:
        """``u``'s clock (epoch or knowledge) changed at ``g``."""
        self.version[u] += 1
        self.segments.extend((u, g, self.epoch[u], self.version[u]))


def _merge(store: dict[Hashable, Clock], key: Hashable, u: int, e: int, clock: Clock) -> None:
    """``store[key] := store[key] ⊔ clock ⊔ {u: e}``."""
    into = store.get(key)
    if into is None:
        into = store[key] = dict(clock)
        into[u] = e
        return
    for k, v in clock.items():
        if v > into.get(k, 0):
            into[k] = v
    if e > into.get(u, 0):
        into[u] = e


def vector_clocks(sync: pl.DataFrame, n: int, *, versions: bool) -> Clocks:
    """Walk synchronisation events in trace order (``ClockWalk``, one event at a time).

    Args:
        sync: The events: ``G``, ``op`` (an index into ``EDGE_OPS``), ``U``,
            ``OBJ_CODE``, ``OTHER_UNIT`` (the forked or joined unit, else null), ``msg``.
        n: Number of units.
        versions: Emit ``Clocks.segments``.

    Returns:
        The changes (and segments) the walk emitted.
    """
    walk = ClockWalk(n, versions=versions)
    acquire, release, send, receive = walk.acquire, walk.release, walk.send, walk.receive
    fork, join = walk.fork, walk.join
    for g, op, u, obj, other, msg in zip(
        sync[c.G].to_list(),
        sync[c.OP].to_list(),
        sync[U].to_list(),
        sync[OBJ_CODE].to_list(),
        _values(sync[OTHER_UNIT]),
        _values(sync[c.MSG]),
        strict=True,
    ):
        if op == ACQUIRE:
            acquire(u, obj, g)
        elif op == RELEASE:
            release(u, obj, g)
        elif op == SEND:
            send(u, obj, msg, g)
        elif op == RECEIVE:
            receive(u, obj, msg, g)
        elif other is None:  # a fork or join of a unit the trace does not name
            continue
        elif op == FORK:
            fork(u, other, g)
        else:
            join(u, other, g)
    return Clocks(changes=walk.changes, segments=walk.segments)


def _values(ser: pl.Series) -> list[int | None]:
    """``ser`` as a list; ``[None] * len`` without conversion when it is all null."""
    if ser.null_count() == ser.len():
        return [None] * ser.len()
    return ser.to_list()


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
        pl.col(c.G).alias("_kg"),
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
