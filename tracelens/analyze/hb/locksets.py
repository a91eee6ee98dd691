"""Which locks each unit holds: held lock sets, final holders, nested acquires.

A unit holds a lock iff the lock's last event is an acquire by that unit. Held sets
are numbered (``ls``; 0 is the empty set) and every unit's set is given as segments
``(unit, G, ls)``: the set from ``G`` on. Two ways compute the same thing:

* ``held_lock_masks``, vectorised: one bit per lock, a unit's set as running sums of
  gains and losses in Int64 mask words (up to ``Options.max_mask_locks`` locks);
* ``walk_locks``, a Python walk with Python ints as masks (any number of locks).

Both also give the final holder of every lock (for ``deadlock``) and the distinct
nested acquires (lock ``b`` acquired while holding ``a``: the edges of
``lock_order_inversion``). ``disjoint_locksets`` and ``apart`` answer whether two held
sets share a lock, for the analyses that pair accesses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import polars as pl

from tracelens.analyze.columns import OP, G
from tracelens.analyze.hb.clocks import ACQUIRE, OBJ_CODE, U

__all__ = [
    "Held",
    "apart",
    "disjoint_locksets",
    "held_lock_masks",
    "mask_names",
    "nested_acquires",
    "walk_locks",
]


def held_lock_masks(
    lock_ev: pl.DataFrame, codes: list[int], obj_names: dict[int, str], *, word_bits: int
) -> tuple[pl.DataFrame, list[list[str]], dict[str, tuple[int, int]], list[dict[str, Any]]]:
    """Held lock sets, final holders and nested acquires, vectorised.

    A unit holds a lock iff the lock's last event is an acquire by that unit. So every
    lock event changes at most two held sets: the previous acquirer loses the lock
    (unless it acquires it again), the acquirer gains it. With one bit per lock, a
    unit's held set is the running sum of its gains and losses: one Int64 column per
    ``word_bits`` locks.

    Args:
        lock_ev: The tracked acquire/release events (``G``, ``OP``, ``U``, ``_o``), in
            trace order.
        codes: The lock codes (``_o``), sorted by lock name: lock ``i`` is bit
            ``i % word_bits`` of word ``i // word_bits``.
        obj_names: Lock code -> name.

    Returns:
        ``(U, G, ls)`` rows (the held set from ``G`` on), the lock sets by id, the
        final holders and the nested acquires, as ``walk_locks`` gives them.
    """
    i64 = pl.Int64
    names = [obj_names.get(c, "") for c in codes]
    n_words = max(1, -(-len(codes) // word_bits))
    words = [f"_m{j}" for j in range(n_words)]
    ev = lock_ev.with_columns(
        pl.col(OBJ_CODE)
        .replace_strict(codes, [1 << (i % word_bits) for i in range(len(codes))], return_dtype=i64)
        .alias("_bit"),
        pl.col(OBJ_CODE)
        .replace_strict(codes, [i // word_bits for i in range(len(codes))], return_dtype=i64)
        .alias("_word"),
        pl.when(pl.col(OP) == ACQUIRE).then(pl.col(U)).shift(1).over(OBJ_CODE).alias("_prev"),
    )
    acq = pl.col(OP) == ACQUIRE
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
        mask_names(sum(m << (j * word_bits) for j, m in enumerate(row)), names)
        for row in masks.select(words).iter_rows()
    ]
    lseg = held.select(U, G, "ls")
    last = ev.group_by(OBJ_CODE).agg(pl.col(OP, U, G).sort_by(G).last()).filter(acq)
    holders = {obj_names.get(o, ""): (u, g) for o, _, u, g in last.iter_rows()}
    # Nested acquires, of which there are none unless some unit at some point holds two
    # locks or more (two bits set in its mask words).
    two = pl.sum_horizontal(pl.col(m) != 0 for m in words) >= 2
    for m in words:
        two = two | ((pl.col(m) & (pl.col(m) - 1)) != 0)
    acquires = (
        nested_acquires(
            ev.filter(acq), held, words, codes, obj_names, locksets, word_bits=word_bits
        )
        if held.select(two.any()).item()
        else []
    )
    return lseg, locksets, holders, acquires


def nested_acquires(
    acq: pl.DataFrame,
    held: pl.DataFrame,
    words: list[str],
    codes: list[int],
    obj_names: dict[int, str],
    locksets: list[list[str]],
    *,
    word_bits: int,
) -> list[dict[str, Any]]:
    """The distinct nested acquires (``Tables.acquires``) of ``held_lock_masks``.

    Args:
        acq: The acquire events of ``held_lock_masks`` (with ``_bit`` and ``_word``).
        held: Each unit's held set (mask words and ``ls``) from each ``G`` on.
        words: The mask word columns.
        codes: The lock codes, in bit order.
        obj_names: Lock code -> name.
        locksets: Lock set id -> names.
    """
    i64 = pl.Int64
    # the held set just before each acquire, one edge per other lock held
    before = (
        acq.select(U, G, OBJ_CODE, "_bit", "_word")
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
            {"_b": list(range(word_bits)), "_bbit": [1 << b for b in range(word_bits)]},
            schema={"_b": i64, "_bbit": i64},
        )
        held_locks = pl.concat(
            [
                before.filter(pl.col(m) != 0)
                .select(U, G, OBJ_CODE, "ls", pl.col(m).alias("_mw"))
                .join(bits, how="cross")
                .filter((pl.col("_mw") & pl.col("_bbit")) != 0)
                .select(
                    U,
                    G,
                    OBJ_CODE,
                    "ls",
                    (pl.col("_b") + j * word_bits)
                    .replace_strict(range(len(codes)), codes, return_dtype=i64)
                    .alias("_a"),
                )
                for j, m in enumerate(words)
            ]
        )
        edges = (
            held_locks.sort(G)
            .join_asof(
                acq.select(U, pl.col(OBJ_CODE).alias("_a"), pl.col(G).alias("ga")),
                left_on=G,
                right_on="ga",
                by=[U, "_a"],
                allow_exact_matches=False,
                check_sortedness=False,
            )
            .group_by(U, "_a", OBJ_CODE, "ls")
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


def mask_names(mask: int, names: list[str]) -> list[str]:
    """The locks of a held-lock mask (bit ``i`` is ``names[i]``), sorted by name.

    Visits the set bits only: a trace can have thousands of locks and as many masks.
    """
    held = []
    while mask:
        low = mask & -mask
        held.append(names[low.bit_length() - 1])
        mask ^= low
    return sorted(held)


@dataclass(slots=True)
class Held:
    lseg: list[int]  # u, g, ls: u's held lock set from g on
    locksets: list[list[str]]
    holders: dict[str, tuple[int, int]]
    acquires: list[dict[str, Any]]


def walk_locks(lock_ev: pl.DataFrame, n: int, obj_names: dict[int, str]) -> Held:
    """Held lock sets, final holders and nested acquires, in Python (many locks).

    What ``held_lock_masks`` computes in polars (same ``lock_ev``), for traces with more than
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
        lock_ev[OBJ_CODE].to_list(),
        strict=True,
    ):
        b = bits.get(obj)
        if b is None:
            b = bits[obj] = 1 << len(lock_objs)
            lock_objs.append(obj)
        if op == ACQUIRE:
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
            "held": mask_names(mask, lock_names),
            "ga": ga,
            "gb": gb,
            "n": cnt,
        }
        for (u, a, b, mask), (ga, gb, cnt) in nested.items()
    ]
    return Held(
        lseg=lseg,
        locksets=[mask_names(mask, lock_names) for mask in ls_ids],
        holders={obj_names.get(k): v for k, v in holder.items()},  # type: ignore[misc,arg-type]
        acquires=acquires,
    )


def disjoint_locksets(ids: list[int], locksets: pl.DataFrame) -> pl.DataFrame:
    """Pairs ``(_la, _lb)`` of the given lock-set ids (of ``locksets``: ``ls``, ``locks``)
    that share no lock (both orders; quadratic in ``len(ids)``)."""
    sets = dict(zip(locksets["ls"].to_list(), locksets["locks"].to_list(), strict=True))
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


def apart(
    frame: pl.LazyFrame, a: str, b: str, locksets: pl.DataFrame, *, max_sets: int
) -> pl.LazyFrame:
    """The rows of ``frame`` whose lock sets (ids in columns ``a`` and ``b``) share no lock.

    A semi join with the table of disjoint pairs when there are at most ``max_sets``
    ids; otherwise the two sets' locks are intersected row by row (the table would
    grow with the square).
    """
    ids = frame.select(pl.concat([pl.col(a), pl.col(b)]).unique()).collect().to_series()
    if ids.len() <= max_sets:
        pairs = disjoint_locksets(ids.to_list(), locksets).lazy()
        return frame.join(pairs, left_on=[a, b], right_on=["_la", "_lb"], how="semi")
    sets = locksets.lazy()
    return (
        frame.join(sets.rename({"ls": a, "locks": "_sa"}), on=a, how="left")
        .join(sets.rename({"ls": b, "locks": "_sb"}), on=b, how="left")
        .filter(pl.col("_sa").list.set_intersection(pl.col("_sb")).list.len() == 0)
        .drop("_sa", "_sb")
    )
