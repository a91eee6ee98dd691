"""Plain-Python reference implementations (the oracles), one event at a time.

Happens-before is computed the obvious way: every event's set of predecessors, built
from its direct edges (program order, release -> later acquire, fork -> the child's
first event, the child's events -> join, send -> recv), in trace order. No vector
clocks, no epochs: a pair is ordered iff one event is in the other's set.
"""

from __future__ import annotations

import itertools
from typing import Any

from tracelens import schema as s

Row = dict[str, Any]


def before_sets(
    rows: list[Row], *, lock_edges: bool, extra: dict[int, list[int]] | None = None
) -> list[set[int]]:
    """For every event, the indices of all events that happen before it.

    ``extra``: further direct edges, event index -> the indices of its predecessors.
    """
    before: list[set[int]] = []
    last_of_unit: dict[str, int] = {}
    events_of_unit: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        u, op, obj = r["unit"], r["op"], r["obj"]
        preds: list[int] = []
        if u in last_of_unit:
            preds.append(last_of_unit[u])
        else:  # the unit's first event: after every fork of it
            preds += [j for j in range(i) if rows[j]["op"] == s.Op.FORK and rows[j]["obj"] == u]
        if op == s.Op.ACQUIRE and lock_edges:
            preds += [
                j for j in range(i) if rows[j]["op"] == s.Op.RELEASE and rows[j]["obj"] == obj
            ]
        elif op == s.Op.JOIN:
            preds += events_of_unit.get(obj, [])
        elif op == s.Op.RECV:
            sends = [j for j in range(i) if rows[j]["op"] == s.Op.SEND and rows[j]["obj"] == obj]
            m = r["msg"]
            same = [j for j in sends if rows[j]["msg"] == m]
            if m is not None and same:
                preds += same + [j for j in sends if rows[j]["msg"] is None]
            else:
                preds += sends
        if extra:
            preds += extra.get(i, [])
        b: set[int] = set()
        for p in preds:
            b.add(p)
            b |= before[p]
        before.append(b)
        last_of_unit[u] = i
        events_of_unit.setdefault(u, []).append(i)
    return before


def handing_lock_edges(rows: list[Row], *, publications: bool = True) -> dict[int, list[int]]:
    """The lock edges the lock-set analysis counts, acquire index -> release indices.

    Publication (only with ``publications``): a read inside a critical section of ``L``
    whose last earlier write (to its variable) is another unit's, inside that unit's
    section of ``L``: the release ending the writer's section -> the acquire beginning
    the reader's. A release of a lock by a unit that is not its last acquirer -> the
    lock's next acquire.
    """
    edges: dict[int, set[int]] = {}
    holder: dict[str, tuple[str, int]] = {}  # lock -> (unit, index of its acquire)
    sections: list[dict[str, int]] = []  # per event: held lock -> index of its acquire
    last_write: dict[tuple[Any, Any], int] = {}
    for i, r in enumerate(rows):
        u, op, obj = r["unit"], r["op"], r["obj"]
        sections.append({k: a for k, (h, a) in holder.items() if h == u})
        if op == s.Op.ACQUIRE:
            holder[obj] = (u, i)
        elif op == s.Op.RELEASE:
            last = [j for j in range(i) if rows[j]["op"] == s.Op.ACQUIRE and rows[j]["obj"] == obj]
            if last and rows[last[-1]]["unit"] != u:
                nxt = [
                    j
                    for j in range(i + 1, len(rows))
                    if rows[j]["op"] == s.Op.ACQUIRE and rows[j]["obj"] == obj
                ]
                if nxt:
                    edges.setdefault(nxt[0], set()).add(i)
            holder.pop(obj, None)
        elif op in s.MEMORY_OPS:
            key = (r["pid"], r["var"])
            w = last_write.get(key)
            if publications and op == s.Op.READ and w is not None and rows[w]["unit"] != u:
                for lock, a in sections[i].items():
                    aw = sections[w].get(lock)
                    if aw is None:
                        continue
                    end = next(
                        j
                        for j in range(aw + 1, len(rows))
                        if rows[j]["op"] in (s.Op.ACQUIRE, s.Op.RELEASE) and rows[j]["obj"] == lock
                    )
                    if rows[end]["op"] == s.Op.RELEASE and end < a:
                        edges.setdefault(a, set()).add(end)
            if op == s.Op.WRITE:
                last_write[key] = i
    return {a: sorted(rs) for a, rs in edges.items()}


def held_sets(rows: list[Row]) -> list[frozenset[str]]:
    """The locks each event's unit holds when the event happens."""
    holder: dict[str, str] = {}
    out = []
    for r in rows:
        out.append(frozenset(k for k, v in holder.items() if v == r["unit"]))
        if r["op"] == s.Op.ACQUIRE:
            holder[r["obj"]] = r["unit"]
        elif r["op"] == s.Op.RELEASE:
            holder.pop(r["obj"], None)
    return out


def commuting(r: Row) -> bool:
    """A commuting write: it conflicts with no other commuting write of its variable."""
    return r["op"] == s.Op.WRITE and r["kind"] == s.Kind.COMMUTING


def conflict(p: Row, e: Row) -> bool:
    """Two accesses to one variable conflict: a write among them, not two commuting ones."""
    return s.Op.WRITE in (p["op"], e["op"]) and not (commuting(p) and commuting(e))


def _pairs(rows: list[Row], before: list[set[int]], locks: list[frozenset[str]] | None):
    for i, e in enumerate(rows):
        if e["op"] not in s.MEMORY_OPS:
            continue
        for j in range(i):
            p = rows[j]
            if (
                p["op"] in s.MEMORY_OPS
                and (p["pid"], p["var"]) == (e["pid"], e["var"])
                and p["unit"] != e["unit"]
                and conflict(p, e)
                and j not in before[i]
                and (locks is None or not (locks[i] & locks[j]))
            ):
                yield j, i


def first_per_var(pairs) -> dict[str, tuple[int, int]]:
    """var -> (partner, access): the earliest access with a bad partner, its latest one."""
    best: dict[str, tuple[int, int]] = {}
    for j, i, var in pairs:
        cur = best.get(var)
        if cur is None or i < cur[1] or (i == cur[1] and j > cur[0]):
            best[var] = (j, i)
    return best


def races(rows: list[Row]) -> dict[str, tuple[int, int]]:
    """data_race oracle (DJIT+-like, all pairs): first race per variable."""
    before = before_sets(rows, lock_edges=True)
    return first_per_var((j, i, rows[i]["var"]) for j, i in _pairs(rows, before, None))


def race_pairs(rows: list[Row]) -> set[tuple[int, int]]:
    """Every racy pair (earlier, later)."""
    return set(_pairs(rows, before_sets(rows, lock_edges=True), None))


def lockset_pairs(rows: list[Row]) -> set[tuple[int, int]]:
    """Every violating pair: unordered by fork/join, hand-offs and releases by
    non-holders; and when neither access holds a lock, by publications too."""
    locks = held_sets(rows)
    handoffs = before_sets(
        rows, lock_edges=False, extra=handing_lock_edges(rows, publications=False)
    )
    published = before_sets(rows, lock_edges=False, extra=handing_lock_edges(rows))
    return {
        (j, i)
        for j, i in _pairs(rows, handoffs, locks)
        if locks[i] or locks[j] or j not in published[i]
    }


def lockset_violations(rows: list[Row]) -> dict[str, tuple[int, int]]:
    """inconsistent_locking oracle: first violation per variable."""
    return first_per_var((j, i, rows[i]["var"]) for j, i in lockset_pairs(rows))


def lock_order_cycles(rows: list[Row], *, max_cycle: int = 4) -> list[tuple[str, list, int]]:
    """lock_order_inversion oracle: ``(var, [(ga, gb) per hop], count)`` per cycle, in the
    order of the rows.

    Every acquire of ``b`` by ``u`` while ``u`` holds ``a`` (a lock is held by the unit
    of its last acquire, until a release by anyone) is an instance of the edge
    ``a -> b`` with the set ``H`` that ``u`` held (``a`` among it); instances with the
    same ``(u, a, b, H)`` are one, counted, at its first acquire (``ga``: ``u``'s latest
    acquire of ``a`` before it). A cycle of locks (its smallest name first, each
    other lock once, at most ``max_cycle`` and at most as many as the units with
    edges) is reported when one instance per hop can be chosen with pairwise
    different units and pairwise disjoint held sets: the first such choice, each
    hop's instances in acquire order. Rows come by the earliest acquire chosen, then
    by the depth-first order of the paths (children in descending name order).
    """
    holder: dict[str, str] = {}
    last_acquire: dict[tuple[str, str], int] = {}
    inst: dict[tuple[str, str, str, frozenset[str]], list[int]] = {}
    for i, r in enumerate(rows):
        op, lock, u = r["op"], r["obj"], r["unit"]
        if op == s.Op.ACQUIRE:
            held = frozenset(k for k, v in holder.items() if v == u)
            for a in held - {lock}:
                hit = inst.setdefault((u, a, lock, held), [last_acquire[(u, a)], i, 0])
                hit[2] += 1
            holder[lock] = u
            last_acquire[(u, lock)] = i
        elif op == s.Op.RELEASE:
            holder.pop(lock, None)
    hops: dict[tuple[str, str], list[tuple[str, frozenset[str], int, int, int]]] = {}
    for (u, a, b, held), (ga, gb, n) in inst.items():
        hops.setdefault((a, b), []).append((u, held, ga, gb, n))
    for opts in hops.values():
        opts.sort(key=lambda o: o[3])
    locks = sorted({x for ab in hops for x in ab})
    limit = min(max_cycle, len({k[0] for k in inst}))
    found = []
    for k in range(2, limit + 1):
        for path in itertools.permutations(locks, k):
            if any(p <= path[0] for p in path[1:]):
                continue
            options = [hops.get((path[i], path[(i + 1) % k]), []) for i in range(k)]
            for choice in itertools.product(*options):
                units = [o[0] for o in choice]
                sets = [o[1] for o in choice]
                if len(set(units)) == k and all(
                    not (x & y) for x, y in itertools.combinations(sets, 2)
                ):
                    order = (path[0], *(_Desc(p) for p in path[1:]))
                    found.append((min(o[3] for o in choice), order, path, choice))
                    break
    found.sort(key=lambda f: (f[0], f[1]))
    return [
        (
            " -> ".join([*path, path[0]]),
            [(o[2], o[3]) for o in choice],
            min(o[4] for o in choice),
        )
        for _, _, path, choice in found
    ]


class _Desc:
    """A string that sorts in descending order (a tuple of them: prefixes first)."""

    __slots__ = ("s",)

    def __init__(self, s: str) -> None:
        self.s = s

    def __lt__(self, other: _Desc) -> bool:
        return self.s > other.s

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Desc) and self.s == other.s

    def __hash__(self) -> int:
        return hash(self.s)
