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

The walk keeps no clock of any access and emits no table of clock changes (one row
per change of a component: with a thread per request, every new unit learns every
earlier one's component, a number of rows growing with the square of the units).
Instead it answers *queries* as it goes (``known``): what unit ``u`` knew of unit ``p``
at position ``G``, each looked up when the walk reaches ``G``. With ``versions`` it
also emits a row each time a unit's clock changes at all (``segments``: unit, ``G``,
epoch, version), for the hybrid order of ``inconsistent_locking``, where accesses of
one clock version share one clock.

A clock is a persistent (immutable) trie of the *other* units' components, keyed by
dense unit id, 32 entries a node (``Tries``): a release, fork or send stores the
clock itself, and a join builds new nodes only where the two clocks differ, sharing
every subtree the two have in common (skipped by identity). A unit forked by a unit
that knows 10,000 others gets that clock in O(1), and a join costs about the entries
that change times the depth (3 for up to 32,768 units), not the number of units.
A unit's own component is kept apart in ``epoch``.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from itertools import compress
from operator import is_, is_not
from typing import Any, Final

import polars as pl

from tracelens import schema as s
from tracelens.accel import pure_python
from tracelens.analyze import columns as c
from tracelens.analyze.parallel import gc_paused

__all__ = [
    "EDGE_OPS",
    "OBJ_CODE",
    "OTHER_UNIT",
    "ClockWalk",
    "Clocks",
    "Tries",
    "U",
    "Versions",
    "compiled",
    "known",
    "vector_clocks",
    "vector_clocks_py",
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

#: A clock: nested tuples of ``WIDTH`` entries, ``depth`` levels (``Tries``).
Clock = tuple[Any, ...]

#: Entries per trie node, and bits of a unit id per level.
WIDTH: Final = 32
_BITS: Final = 5
_MASK: Final = WIDTH - 1


def _load_compiled() -> Any:
    """The compiled walk (``_clockwalk``), or ``None`` (not built, or
    ``TRACELENS_PURE_PYTHON`` set)."""
    if pure_python():
        return None
    try:
        from tracelens.analyze.hb import _clockwalk
    except ImportError:
        return None
    return _clockwalk


#: ``tracelens.analyze.hb._clockwalk`` when in use, else ``None`` (``vector_clocks``).
compiled: Final = _load_compiled()


class Tries:
    """Persistent clocks over unit ids ``0 .. n-1``: get, set one entry, and join.

    A missing component is 0; every all-zero subtree is one shared object. Nodes are
    never changed: ``set`` and ``join`` return a new trie (or one of their arguments,
    when nothing changes, so that identity tells "unchanged" and shared subtrees are
    skipped by the next join).
    """

    __slots__ = ("depth", "empty", "shifts", "zeros")

    def __init__(self, n: int) -> None:
        depth = 1
        while WIDTH**depth < n:
            depth += 1
        self.depth = depth
        #: shift of the unit id per level, the root's first
        self.shifts = tuple(_BITS * i for i in range(depth - 1, -1, -1))
        empty: Clock = (0,) * WIDTH
        #: the all-zero subtree of each level, by its shift
        self.zeros = {0: empty}
        for level in range(1, depth):
            empty = self.zeros[_BITS * level] = (empty,) * WIDTH
        self.empty = empty

    def get(self, t: Clock, k: int) -> int:
        """Component ``k`` of ``t``."""
        for shift in self.shifts:
            t = t[(k >> shift) & _MASK]
        return t  # type: ignore[return-value]

    def set(self, t: Clock, k: int, v: int) -> Clock:
        """``t`` with component ``k`` set to ``v`` (the path to it copied)."""
        return _set(t, k, v, self.shifts[0])

    def join(self, a: Clock, b: Clock) -> Clock:
        """The componentwise maximum ``a ⊔ b``: ``a`` itself when ``b`` adds nothing, ``b``
        itself when ``a`` does."""
        return _join(a, b, self.shifts[0], self.zeros)


def _set(t: Clock, k: int, v: int, shift: int) -> Clock:
    i = (k >> shift) & _MASK
    node = list(t)
    node[i] = v if shift == 0 else _set(t[i], k, v, shift - _BITS)
    return tuple(node)


def _join(a: Clock, b: Clock, shift: int, zeros: dict[int, Clock]) -> Clock:
    if a is b:
        return a
    zero = zeros[shift]
    if a is zero:
        return b
    if b is zero:
        return a
    if shift == 0:
        m = tuple(map(max, a, b))
        if m == a:
            return a
        return b if m == b else m
    node: list[Any] | None = None
    below = shift - _BITS
    for i in compress(range(WIDTH), map(is_not, a, b)):  # the children that differ
        x = a[i]
        z = _join(x, b[i], below, zeros)
        if z is not x:
            if node is None:
                node = list(a)
            node[i] = z
    if node is None:
        return a
    if all(map(is_, node, b)):
        return b
    return tuple(node)


@dataclass(frozen=True, slots=True)
class Versions:
    """Every unit's clock at every version of it (a walk with ``versions``)."""

    tries: Tries
    snapshots: list[list[Clock]]

    def known(
        self, frame: pl.LazyFrame, *, unit: str, version: str, other: str, out: str
    ) -> pl.LazyFrame:
        """Add ``out``: what ``unit`` knew of ``other`` at its clock version ``version``.

        Looked up once per distinct (unit, version, other), then joined back.
        """
        keys = [unit, version, other]
        distinct = frame.select(keys).unique().collect()
        get, snaps = self.tries.get, self.snapshots
        answers = [
            0 if u == p else get(snaps[u][v], p)
            for u, v, p in zip(*(distinct[k].to_list() for k in keys), strict=True)
        ]
        found = distinct.with_columns(pl.Series(out, answers, dtype=pl.Int64))
        return frame.join(found.lazy(), on=keys, how="left")


@dataclass(slots=True)
class Clocks:
    """What a walk emits, as flat lists of Int64 rows.

    Attributes:
        answers: Per query (in the order given), what its unit knew of the other.
        segments: ``unit, G, epoch, version`` per change of a unit's clock (only
            with ``versions``).
    """

    answers: list[int]
    segments: list[int]
    versions: Versions | None = None


class ClockWalk:
    """The vector clocks of ``n`` units, updated one synchronisation event at a time.

    Args:
        n: Number of units (ids ``0 .. n-1``).
        versions: Emit ``Clocks.segments`` and keep every unit's clock of every version
            (``snapshots``; a snapshot shares all but the changed paths with the one
            before).
    """

    __slots__ = (
        "clock",
        "epoch",
        "lock_release",
        "segments",
        "sent_all",
        "sent_anonymous",
        "sent_message",
        "sent_once",
        "snapshots",
        "tries",
        "version",
        "versions",
    )

    def __init__(self, n: int, *, versions: bool) -> None:
        self.tries = tries = Tries(n)
        self.epoch = [1] * n  # C_u(u)
        self.clock: list[Clock] = [tries.empty] * n  # C_u, own component apart
        self.version = [0] * n
        self.versions = versions
        #: per unit, its clock at each version (index: the version)
        self.snapshots: list[list[Clock]] = [[tries.empty] for _ in range(n)] if versions else []
        #: lock -> (releasing unit, its epoch then, its clock then): L_m
        self.lock_release: dict[int | None, tuple[int, int, Clock]] = {}
        #: object -> the join of every clock sent on it
        self.sent_all: dict[Hashable, Clock] = {}
        #: object -> the join of the clocks sent on it without a message id
        self.sent_anonymous: dict[Hashable, Clock] = {}
        #: (object, message id) -> the join of the clocks that sent that message
        self.sent_message: dict[Hashable, Clock] = {}
        #: object -> (sender, its epoch then) while the object has had one send only
        self.sent_once: dict[Hashable, tuple[int, int] | None] = {}
        self.segments: list[int] = []

    def knows(self, u: int, p: int) -> int:
        """What ``u`` knows now of ``p``'s clock (0 for ``u`` itself, as for nothing)."""
        return 0 if u == p else self.tries.get(self.clock[u], p)

    # --- the edges ---------------------------------------------------------------------

    def acquire(self, u: int, lock: int | None, g: int) -> None:
        """``u`` acquires ``lock`` at ``g``: it learns the clock of the lock's last release."""
        last = self.lock_release.get(lock)
        if last is None:
            return
        r, e, released = last
        tries = self.tries
        own = self.clock[u]
        if r == u or tries.get(own, r) >= e:  # already known: nothing to learn
            return
        self.clock[u] = tries.join(tries.set(own, r, e), released)
        if self.versions:
            self._new_version(u, g)

    def release(self, u: int, lock: int | None, g: int) -> None:
        """``u`` releases ``lock`` at ``g``: the lock keeps ``u``'s clock; a new epoch."""
        self.lock_release[lock] = (u, self.epoch[u], self.clock[u])
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
        self.sent_once[obj] = (u, e) if obj not in self.sent_all else None
        self._merge(self.sent_all, obj, u, e, clock)
        if msg is None:
            self._merge(self.sent_anonymous, obj, u, e, clock)
        else:
            self._merge(self.sent_message, (obj, msg), u, e, clock)
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
            once = self.sent_once[obj]
            # one send, of an epoch the receiver knows already: nothing to learn (as for
            # an acquire; the publications through a lock are such edges, one send each)
            if once is not None and once[0] != u and self.knows(u, once[0]) >= once[1]:
                return
            sources = [every]
        changed = False
        for clock in sources:
            changed = self._learn(u, None, 0, clock) or changed
        if changed and self.versions:
            self._new_version(u, g)

    # --- helpers -----------------------------------------------------------------------

    def _learn(self, u: int, r: int | None, e: int, clock: Clock) -> bool:
        """``u`` learns ``clock`` (and epoch ``e`` of ``r``); whether its clock changed."""
        tries = self.tries
        own = self.clock[u]
        new = tries.join(own, clock)
        if r is not None and r != u and tries.get(new, r) < e:
            new = tries.set(new, r, e)
        self.clock[u] = new
        return new is not own

    def _unit_edge(self, dst: int, src: int, g: int) -> None:
        """``dst`` learns ``src``'s clock, then ``src`` starts a new epoch."""
        if self._learn(dst, src, self.epoch[src], self.clock[src]) and self.versions:
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
        self.snapshots[u].append(self.clock[u])

    def _merge(
        self, store: dict[Hashable, Clock], key: Hashable, u: int, e: int, clock: Clock
    ) -> None:
        """``store[key] := store[key] ⊔ clock ⊔ {u: e}``."""
        tries = self.tries
        into = store.get(key)
        into = clock if into is None else tries.join(into, clock)
        if e > tries.get(into, u):
            into = tries.set(into, u, e)
        store[key] = into


def vector_clocks(
    sync: pl.DataFrame,
    n: int,
    *,
    versions: bool,
    queries: tuple[list[int], list[int], list[int]] | None = None,
) -> Clocks:
    """Walk synchronisation events in trace order (``ClockWalk``, one event at a time).

    The compiled walk (``_clockwalk.walk``) does it when it is built and
    ``TRACELENS_PURE_PYTHON`` is not set (``compiled``), else ``vector_clocks_py``; both
    give the same outputs.

    Args:
        sync: The events: ``G``, ``op`` (an index into ``EDGE_OPS``), ``U``,
            ``OBJ_CODE``, ``OTHER_UNIT`` (the forked or joined unit, else null), ``msg``;
            sorted by ``G``.
        n: Number of units.
        versions: Emit ``Clocks.segments``.
        queries: ``(at, unit, other)`` lists, sorted by ``at``: what ``unit`` knew of
            ``other`` once every event at or before ``at`` is walked.

    Returns:
        The answers (and segments) of the walk.
    """
    if compiled is None:
        return vector_clocks_py(sync, n, versions=versions, queries=queries)
    tries = Tries(n)
    q_at, q_u, q_p = queries if queries is not None else ([], [], [])
    answers, segments, snapshots = compiled.walk(
        n,
        tuple(tries.zeros[_BITS * level] for level in range(tries.depth)),
        versions,
        *_columns(sync),
        _before(sync, q_at),
        q_u,
        q_p,
    )
    kept = Versions(tries, snapshots) if snapshots is not None else None
    return Clocks(answers=answers, segments=segments, versions=kept)


def vector_clocks_py(
    sync: pl.DataFrame,
    n: int,
    *,
    versions: bool,
    queries: tuple[list[int], list[int], list[int]] | None = None,
) -> Clocks:
    """``vector_clocks`` in Python, one ``ClockWalk`` method per event: the reference."""
    walk = ClockWalk(n, versions=versions)
    acquire, release, send, receive = walk.acquire, walk.release, walk.send, walk.receive
    fork, join, knows = walk.fork, walk.join, walk.knows
    q_at, q_u, q_p = queries if queries is not None else ([], [], [])
    answers: list[int] = []
    answer = answers.append
    n_q = len(q_at)
    # per query, how many events come before it: answered after event ``before[q] - 1``
    before = _before(sync, q_at)
    qi = 0
    while qi < n_q and before[qi] == 0:
        answer(0)
        qi += 1
    due = before[qi] - 1 if qi < n_q else -1
    for i, (g, op, u, obj, other, msg) in enumerate(zip(*_columns(sync), strict=True)):
        if op == ACQUIRE:
            acquire(u, obj, g)
        elif op == RELEASE:
            release(u, obj, g)
        elif op == SEND:
            send(u, obj, msg, g)
        elif op == RECEIVE:
            receive(u, obj, msg, g)
        elif other is None:  # a fork or join of a unit the trace does not name
            pass
        elif op == FORK:
            fork(u, other, g)
        else:
            join(u, other, g)
        if i == due:
            while qi < n_q and before[qi] == i + 1:
                answer(knows(q_u[qi], q_p[qi]))
                qi += 1
            due = before[qi] - 1 if qi < n_q else -1
    kept = Versions(walk.tries, walk.snapshots) if versions else None
    return Clocks(answers=answers, segments=walk.segments, versions=kept)


def _before(sync: pl.DataFrame, at: list[int]) -> list[int]:
    """Per query position, how many events of ``sync`` are at or before it."""
    return sync[c.G].search_sorted(pl.Series(at, dtype=pl.Int64), side="right").to_list()


def _columns(sync: pl.DataFrame) -> tuple[list[Any], ...]:
    """The walk's input columns as lists: ``G``, op, unit, object, other unit, message."""
    return (
        sync[c.G].to_list(),
        sync[c.OP].to_list(),
        sync[U].to_list(),
        sync[OBJ_CODE].to_list(),
        _values(sync[OTHER_UNIT]),
        _values(sync[c.MSG]),
    )


def _values(ser: pl.Series) -> list[int | None]:
    """``ser`` as a list; ``[None] * len`` without conversion when it is all null."""
    if ser.null_count() == ser.len():
        return [None] * ser.len()
    return ser.to_list()


def known(
    frame: pl.LazyFrame | pl.DataFrame,
    sync: pl.DataFrame,
    n: int,
    *,
    unit: str,
    other: str,
    at: str,
    out: str,
) -> pl.DataFrame:
    """Add ``out``: what ``unit`` knew of ``other``'s clock at position ``at`` (0 if nothing).

    One walk over ``sync`` (``vector_clocks``) answers every row.

    Args:
        frame: Rows with the columns ``unit``, ``other`` (unit ids) and ``at``.
        sync: The synchronisation events to walk (``Tables.sync``).
        n: Number of units.
        unit: Column naming the unit whose clock is looked at.
        other: Column naming the unit whose component is wanted.
        at: Column with the ``G`` position.
        out: Name of the new column.

    Returns:
        ``frame`` with ``out`` added (sorted by ``at``).
    """
    rows = frame.lazy().sort(at).collect()
    with gc_paused():
        answers = vector_clocks(
            sync,
            n,
            versions=False,
            queries=(rows[at].to_list(), rows[unit].to_list(), rows[other].to_list()),
        ).answers
    return rows.with_columns(pl.Series(out, answers, dtype=pl.Int64))
