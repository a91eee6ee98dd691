"""Which locks each unit holds: held lock sets, final holders, nested acquires.

A unit holds a lock iff the lock's last event is an acquire by that unit. Held sets
are numbered (``ls``; 0 is the empty set) and every unit's set is given as segments
``(unit, G, ls)``: the set from ``G`` on. Two ways compute the same thing (``Held``):

* ``held_lock_masks``, vectorised: one bit per lock, a unit's set as running sums of
  gains and losses in Int64 mask words (up to ``Options.max_mask_locks`` locks);
* ``walk_locks``, a Python walk with Python ints as masks (any number of locks).

Both also give the final holder of every lock (for ``deadlock``) and the distinct
nested acquires: one row per (unit, acquired lock, held set before it) when that set
has another lock, not one per held lock (a unit holding ``d`` locks at once would make
``d^2 / 2`` of those: ``lock_order_inversion`` reads the edges ``a -> b`` off the held
sets, ``Held.members``, itself). ``disjoint_locksets`` and ``apart`` answer whether two
held sets share a lock, for the analyses that pair accesses; ``apart_masks`` the same for
pairs of ``Held.masks`` ids, as 64-bit words ANDed in polars (``apart_masks_reference``
is the pair-by-pair Python check it replaces).
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from tracelens.analyze.columns import OP, G
from tracelens.analyze.hb.clocks import ACQUIRE, OBJ_CODE, U

__all__ = [
    "LOCK",
    "Held",
    "apart",
    "apart_masks",
    "disjoint_locksets",
    "held_lock_masks",
    "walk_locks",
]

#: Column holding a lock as its index in ``Held.names`` (its bit in ``Held.masks``).
LOCK = "_i"


@dataclass(frozen=True, slots=True)
class Held:
    """The locks each unit holds (``held_lock_masks`` or ``walk_locks``).

    Attributes:
        lseg: ``U``, ``G``, ``ls``: the unit's held set from ``G`` on.
        masks: Held set id -> its locks as bits (bit ``i``: lock ``i``).
        members: ``ls``, ``LOCK``: one row per lock of each held set.
        names: Lock index -> name.
        codes: Lock index -> ``OBJ_CODE``.
        holders: Lock name -> (unit, ``G`` of its acquire), for the locks held at the end.
        nested: The distinct nested acquires, in trace order of their first instance:
            ``U``, ``_b`` (the lock acquired, an index), ``ls`` (the set held just before,
            which has a lock other than ``_b``), ``gb`` (``G`` of the first such acquire),
            ``n`` (how many).
        acquires: ``U``, ``LOCK``, ``G`` of every acquire, in trace order (which acquire of
            a held lock a nested acquire came after: ``lock_order_inversion``).
    """

    lseg: pl.DataFrame
    masks: list[int]
    members: pl.DataFrame
    names: list[str]
    codes: list[int | None]
    holders: dict[str, tuple[int, int]]
    nested: pl.DataFrame
    acquires: pl.DataFrame

    def lockset_names(self) -> pl.DataFrame:
        """``ls`` -> ``locks``: every held set's lock names, sorted (``Tables.locksets``)."""
        names = pl.Series("_n", self.names, dtype=pl.String)
        by_set = (
            self.members.with_columns(names.gather(self.members[LOCK]).alias("locks"))
            .group_by("ls")
            .agg(pl.col("locks").sort())
        )
        ids = pl.DataFrame({"ls": range(len(self.masks))}, schema={"ls": pl.Int64})
        return ids.join(by_set, on="ls", how="left", maintain_order="left").with_columns(
            pl.col("locks").fill_null(pl.lit([], dtype=pl.List(pl.String)))
        )


_NESTED = {U: pl.Int32, "_b": pl.Int64, "ls": pl.Int64, "gb": pl.Int64, "n": pl.Int64}
_MEMBERS = {"ls": pl.Int64, LOCK: pl.Int64}
_ACQUIRES = {U: pl.Int32, LOCK: pl.Int64, G: pl.Int64}


def held_lock_masks(
    lock_ev: pl.DataFrame, codes: list[int], obj_names: dict[int, str], *, word_bits: int
) -> Held:
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
        pl.col(OBJ_CODE).replace_strict(codes, range(len(codes)), return_dtype=i64).alias(LOCK),
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
    bits = pl.DataFrame(
        {"_b": list(range(word_bits)), "_bbit": [1 << b for b in range(word_bits)]},
        schema={"_b": i64, "_bbit": i64},
    )
    # the words of every set in order (set, word), each word's bits in order: the
    # members come out sorted by (set, lock) without sorting the (big) result
    by_word = (
        masks.unpivot(index="ls", on=words, variable_name="_j", value_name="_mw")
        .filter(pl.col("_mw") != 0)
        .with_columns(pl.col("_j").str.slice(2).cast(i64))
        .sort("ls", "_j")
    )
    members = (
        by_word.join(bits, how="cross", maintain_order="left_right")
        .filter((pl.col("_mw") & pl.col("_bbit")) != 0)
        .select("ls", (pl.col("_b") + pl.col("_j") * word_bits).alias(LOCK))
    )
    last = ev.group_by(OBJ_CODE).agg(pl.col(OP, U, G).sort_by(G).last()).filter(acq)
    # the held set just before each acquire, when it has another lock than the one taken
    others = pl.any_horizontal(
        pl.when(pl.col("_word") == j).then(pl.col(m) & ~pl.col("_bit")).otherwise(pl.col(m)) != 0
        for j, m in enumerate(words)
    )
    nested = (
        ev.filter(acq)
        .select(U, G, LOCK, "_bit", "_word")
        .join_asof(
            held.rename({G: "_hg"}),
            left_on=G,
            right_on="_hg",
            by=U,
            allow_exact_matches=False,
            check_sortedness=False,
        )
        .filter(pl.col("ls").is_not_null() & (pl.col("ls") != 0) & others)
        .group_by(U, LOCK, "ls")
        .agg(pl.col(G).min().alias("gb"), pl.len().alias("n"))
        .sort("gb")
        .select(U, pl.col(LOCK).alias("_b"), "ls", "gb", "n")
    )
    return Held(
        lseg=held.select(U, G, "ls"),
        masks=[
            sum(m << (j * word_bits) for j, m in enumerate(row))
            for row in masks.select(words).iter_rows()
        ],
        members=members.cast(_MEMBERS),  # type: ignore[arg-type]
        names=names,
        codes=list(codes),
        holders={obj_names.get(o, ""): (u, g) for o, _, u, g in last.iter_rows()},
        nested=nested.cast(_NESTED),  # type: ignore[arg-type]
        acquires=ev.filter(acq).select(U, LOCK, G).cast(_ACQUIRES),  # type: ignore[arg-type]
    )


def walk_locks(lock_ev: pl.DataFrame, obj_names: dict[int, str]) -> Held:
    """Held lock sets, final holders and nested acquires, in Python (many locks).

    What ``held_lock_masks`` computes in polars (same ``lock_ev``), for traces with more than
    ``MAX_MASK_LOCKS`` distinct locks: masks are Python ints (a lock's bit: the order in
    which the walk meets the locks), numbered in ``ls_ids``.
    """
    bits: dict[int | None, int] = {}
    lock_objs: list[int | None] = []
    held: dict[int, int] = {}  # unit -> mask of held locks
    holder: dict[int | None, tuple[int, int]] = {}
    ls_ids: dict[int, int] = {0: 0}
    nested: dict[tuple[int, int, int], list[int]] = {}
    seg_u: list[int] = []
    seg_g: list[int] = []
    seg_ls: list[int] = []
    acq_u: list[int] = []
    acq_i: list[int] = []
    acq_g: list[int] = []

    def set_held(u: int, mask: int, g: int) -> None:
        held[u] = mask
        i = ls_ids.get(mask)
        if i is None:
            i = ls_ids[mask] = len(ls_ids)
        seg_u.append(u)
        seg_g.append(g)
        seg_ls.append(i)

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
                set_held(p, held[p] & ~b, g)
            mask = held.get(u, 0)
            if mask & ~b:
                key = (u, b.bit_length() - 1, mask)
                hit = nested.get(key)
                if hit is None:
                    nested[key] = [g, 1]
                else:
                    hit[1] += 1
            acq_u.append(u)
            acq_i.append(b.bit_length() - 1)
            acq_g.append(g)
            holder[obj] = (u, g)
            set_held(u, mask | b, g)
        else:
            prev = holder.pop(obj, None)
            owner = u if prev is None else prev[0]
            set_held(owner, held.get(owner, 0) & ~b, g)

    masks = list(ls_ids)
    ls_of, lock_of = [], []
    for i, mask in enumerate(masks):
        while mask:
            low = mask & -mask
            ls_of.append(i)
            lock_of.append(low.bit_length() - 1)
            mask ^= low
    rows = sorted(((gb, u, b, ls_ids[m], n) for (u, b, m), (gb, n) in nested.items()))
    return Held(
        lseg=pl.DataFrame(
            {U: seg_u, G: seg_g, "ls": seg_ls}, schema={U: pl.Int32, G: pl.Int64, "ls": pl.Int64}
        ),
        masks=masks,
        members=pl.DataFrame({"ls": ls_of, LOCK: lock_of}, schema=_MEMBERS),
        names=[obj_names.get(o, "") if o is not None else "" for o in lock_objs],
        codes=lock_objs,
        holders={obj_names.get(k, ""): v for k, v in holder.items()},  # type: ignore[arg-type]
        nested=pl.DataFrame(
            {
                U: [r[1] for r in rows],
                "_b": [r[2] for r in rows],
                "ls": [r[3] for r in rows],
                "gb": [r[0] for r in rows],
                "n": [r[4] for r in rows],
            },
            schema=_NESTED,
        ),
        acquires=pl.DataFrame({U: acq_u, LOCK: acq_i, G: acq_g}, schema=_ACQUIRES),
    )


def disjoint_locksets(ids: list[int], locksets: pl.DataFrame) -> pl.DataFrame:
    """Pairs ``(_la, _lb)`` of the given lock-set ids (of ``locksets``: ``ls``, ``locks``)
    that share no lock (both orders; quadratic in ``len(ids)``)."""
    # only the sets asked for become Python lists (1,000 locks held at once make held
    # sets of a million names in all)
    wanted = locksets.filter(pl.col("ls").is_in(ids))
    sets = dict(zip(wanted["ls"].to_list(), wanted["locks"].to_list(), strict=True))
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


#: Cells (pairs x mask words) of one block of ``apart_masks``: bounds its memory.
_BLOCK_CELLS = 1 << 23
_WORD = (1 << 64) - 1
_BITS = pl.Series("_bit", [1 << b for b in range(64)], dtype=pl.UInt64)


def apart_masks(frame: pl.DataFrame, a: str, b: str, masks: list[int]) -> pl.DataFrame:
    """The rows of ``frame`` whose held sets (``Held.masks`` ids in columns ``a`` and ``b``)
    share no lock.

    In polars, not a Python loop over the pairs (a unit holding 1,000 locks at once makes
    500,000 of them): each mask met is cut into 64-bit words. First each set's lowest and
    highest lock is looked up in the other set (a set nested in or overlapping another
    mostly shares one of those: the pair is out); the pairs left have all their words
    ANDed, in blocks, so that pairs x words stays bounded.
    """
    ids = pl.concat([frame[a], frame[b]]).unique().sort().to_list()
    n_words = max((masks[i].bit_length() for i in ids), default=0)
    n_words = -(-n_words // 64)
    if n_words == 0:  # no rows, or every set empty
        return frame
    where = [0] * len(masks)  # id -> its row among ``ids``
    lo, hi, flat = [], [], []
    for k, i in enumerate(ids):
        m = masks[i]
        where[i] = k
        lo.append((m & -m).bit_length() - 1)
        hi.append(m.bit_length() - 1)
        flat += [(m >> (64 * j)) & _WORD for j in range(n_words)]
    at = pl.lit(pl.Series("_at", where, dtype=pl.Int64))
    lo_s = pl.lit(pl.Series("_lo", lo, dtype=pl.Int64))
    hi_s = pl.lit(pl.Series("_hi", hi, dtype=pl.Int64))
    words = pl.lit(pl.Series("_words", flat, dtype=pl.UInt64))
    bits = pl.lit(_BITS)
    ka, kb = pl.col("_ka"), pl.col("_kb")

    def has(k: pl.Expr, lock: pl.Expr) -> pl.Expr:
        """Whether the set at row ``k`` holds ``lock`` (-1, an empty set's end: no)."""
        at_lock = lock.clip(lower_bound=0)
        word = words.gather(k * n_words + at_lock // 64)
        return (lock >= 0) & ((word & bits.gather(at_lock % 64)) != 0)

    def shares(j: int) -> pl.Expr:
        return (words.gather(ka * n_words + j) & words.gather(kb * n_words + j)) != 0

    keyed = frame.with_columns(at.gather(pl.col(a)).alias("_ka"), at.gather(pl.col(b)).alias("_kb"))
    for x, y in ((ka, kb), (kb, ka)):
        keyed = keyed.filter(~has(y, lo_s.gather(x)) & ~has(y, hi_s.gather(x)))
    step = max(1, _BLOCK_CELLS // n_words)
    parts = [
        keyed.slice(start, step).filter(~pl.any_horizontal(shares(j) for j in range(n_words)))
        for start in range(0, keyed.height, step)
    ]
    out = pl.concat(parts) if len(parts) > 1 else parts[0] if parts else keyed
    return out.drop("_ka", "_kb")


def apart_masks_reference(frame: pl.DataFrame, a: str, b: str, masks: list[int]) -> pl.DataFrame:
    """``apart_masks``, pair by pair in Python (the plain reference its tests compare with)."""
    keep = [
        not masks[x] & masks[y] for x, y in zip(frame[a].to_list(), frame[b].to_list(), strict=True)
    ]
    return frame.filter(pl.Series(keep, dtype=pl.Boolean))
