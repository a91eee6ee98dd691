"""Plain-Python reference implementations (the oracles), one event at a time.

Happens-before is computed the obvious way: every event's set of predecessors, built
from its direct edges (program order, release -> later acquire, fork -> the child's
first event, the child's events -> join, send -> recv), in trace order. No vector
clocks, no epochs: a pair is ordered iff one event is in the other's set.
"""

from __future__ import annotations

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
