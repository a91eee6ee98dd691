"""Read-modify-write windows and the findings they give: ``lost_update``, ``atomicity_violation``.

Definitions (``docs/analysis.md`` has examples):

* A variable's *timeline* is its reads and writes in one process, in sequence order.
* A *local pair* is two consecutive accesses of one unit to one variable (no access of
  that unit to that variable between them). Every access of another unit to the
  variable between the two is a *remote* access (processes share no memory, so only
  accesses of the same process count).
* A local pair is a *window* when it is a read followed by a write (a read-modify-write,
  in any code), or when it lies in code meant to be atomic (*scoped*): both accesses
  in one explicit ``tracelens.atomic`` region of the unit (outermost region), or both
  inside one continuous hold of a (non-internal) lock by the unit.
* Findings, after AVIO's unserializable interleavings (Lu et al., ASPLOS 2006):

  ===============  ===========  ============  ===========  =====================
  local first      remote       local second  scope        finding
  ===============  ===========  ============  ===========  =====================
  read             write        write         any window   ``lost_update``
  read             write        read          scoped       ``atomicity_violation``
  write            read         write         scoped       ``atomicity_violation``
  write            write        read          scoped       ``atomicity_violation``
  ===============  ===========  ============  ===========  =====================

  The scope restriction matters: pairing every two accesses of a thread flags each
  correctly locked increment that follows another thread's (write, remote write,
  read across two separate critical sections), tens of thousands of false alarms
  on a busy trace.

How it is computed, without a Python loop per event: the accesses are sorted by
``(pid, variable, seq)`` and numbered (``pos``); running counts of reads and writes
give "how many remote writes lie between two positions" by subtraction, and a
backward fill gives "the first write after a position". A second sort by ``(unit,
variable, seq)`` pairs each access with its unit's previous one (``shift``). Sorts use
64-bit hashes of the names as keys (sorting strings is several times slower). Lock
holds and outermost atomic regions become intervals whose running maximum end, found
with a backward ``join_asof`` on the pair's first access, says whether one interval
covers the pair. Only pairs with a remote access of the right kind between them go
through that scope test. The few pairs that make findings get their call sites and
unit names by joins, and are grouped on those plain columns: one finding per kind,
variable and code sites, with a count and the row numbers of the first and widest
instances, whose events and explanation alone are then built.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from typing import Final

import polars as pl

from tracelens import schema as s
from tracelens.analyze import columns as c
from tracelens.analyze import intervals
from tracelens.analyze.findings import FINDING_SCHEMA, event_struct, with_lists
from tracelens.analyze.kinds import KINDS as CATALOGUE
from tracelens.analyze.kinds import kinds_of
from tracelens.analyze.options import DEFAULT, Options

__all__ = [
    "ATOMICITY_VIOLATION",
    "KINDS",
    "LOST_UPDATE",
    "accesses",
    "atomic_regions",
    "lock_holds",
    "locks_held",
    "run",
    "window_findings",
    "windows",
]

LOST_UPDATE: Final = "lost_update"
ATOMICITY_VIOLATION: Final = "atomicity_violation"
#: The finding kinds this module produces.
KINDS: Final = kinds_of("windows")

_R, _W = s.Op.READ, s.Op.WRITE
_SEED: Final = 0x7A11E45
_SEED_PID: Final = 0x9D1D
_SEED_LOCK: Final = 0x0B1EC7


def _hash(col: str, seed: int = _SEED) -> pl.Expr:
    # Sorting on a 64-bit hash instead of the string is several times faster; two
    # names colliding (odds ~n²/2⁶⁵) would merge their timelines, an accepted risk.
    return pl.col(col).hash(seed)


def _var_key() -> pl.Expr:
    # One key per (process, variable): processes share no memory.
    return _hash(c.VAR) ^ _hash(c.PID, _SEED_PID)


def _sort_within(frame: pl.LazyFrame, key: str, order: str) -> pl.LazyFrame:
    """``frame`` sorted by ``(key, order)``: by ``order``, then stably by ``key`` alone.

    A sort on one integer column is several times faster than one on two (the
    streaming engine sorts several keys through a row encoding: at 1M events 0.07 s
    against 0.37 s). The ``with_columns`` keeps polars from merging the two sorts back
    into one sort on two keys.
    """
    return frame.sort(order).with_columns(pl.col(order)).sort(key, maintain_order=True)


def _timeline(events: pl.LazyFrame) -> pl.LazyFrame:
    """``accesses`` without names: the numeric columns the analysis works on.

    ``w`` is true for a write, false for a read.
    """
    is_r, is_w = ~pl.col("w"), pl.col("w")
    lean = events.filter(pl.col(c.OP).is_in([_R, _W])).select(
        c.PID,
        c.SEQ,
        c.TS,
        (pl.col(c.OP) == _W).alias("w"),
        _var_key().alias("var_key"),
        _hash(c.UNIT).alias("unit_key"),
    )
    return (
        _sort_within(lean, "var_key", c.SEQ)
        .with_row_index("pos")
        .with_columns(
            pl.col("pos").cast(pl.Int64),
            is_r.cast(pl.Int64).cum_sum().alias("n_reads"),
            is_w.cast(pl.Int64).cum_sum().alias("n_writes"),
        )
        .with_columns(
            pl.when(is_r).then(pl.col("pos")).shift(-1).backward_fill().alias("next_read"),
            pl.when(is_w).then(pl.col("pos")).shift(-1).backward_fill().alias("next_write"),
        )
    )


def _op(w: str) -> pl.Expr:
    return pl.when(pl.col(w)).then(pl.lit(_W)).otherwise(pl.lit(_R))


def accesses(events: pl.LazyFrame, /) -> pl.LazyFrame:
    """Every variable's timeline: its reads and writes, numbered in timeline order.

    Args:
        events: The loaded trace (``Trace.events``).

    Returns:
        One row per access: ``pos`` (place in the order of ``(variable key, seq)``, so
        one variable's accesses in one process have consecutive ``pos``), ``pid``,
        ``var``, ``seq``, ``ts``, ``unit``, ``op``; the running counts
        ``n_reads``/``n_writes`` (up to and including the row); ``next_read``/
        ``next_write``, the ``pos`` of the first read/write after the row (of any
        variable: compare it with the end of a window); and the hash keys
        ``var_key`` (of the process and the variable) and ``unit_key``.
    """
    names = events.filter(pl.col(c.OP).is_in([_R, _W])).select(c.PID, c.SEQ, c.VAR, c.UNIT)
    return (
        _timeline(events)
        .join(names, on=[c.PID, c.SEQ], how="left")
        .sort("pos")
        .select(
            "pos",
            c.PID,
            c.VAR,
            c.SEQ,
            c.TS,
            c.UNIT,
            _op("w").alias(c.OP),
            "n_reads",
            "n_writes",
            "next_read",
            "next_write",
            "var_key",
            "unit_key",
        )
    )


def _covering(intervals: pl.LazyFrame, name: str) -> pl.LazyFrame:
    """Intervals (``intervals``) of each unit as ``unit_key``, ``start``, ``end`` (seqs),
    ``unit``, ``key_name`` (the lock or region) and ``covers_until``, the running maximum
    of ``end`` per unit in ``start`` order; sorted by ``(unit_key, start)``. An interval
    of the unit covers ``[a, b]`` iff the last ``covers_until`` with ``start <= a`` is
    ``> b``."""
    opened = intervals.select(
        _hash(c.UNIT).alias("unit_key"),
        pl.col("start_seq").alias("start"),
        pl.col("end_seq").alias("end"),
        c.UNIT,
        pl.col(name).alias("key_name"),
    )
    return _sort_within(opened, "unit_key", "start").with_columns(
        pl.col("end").cum_max().over("unit_key").alias("covers_until")
    )


def lock_holds(events: pl.LazyFrame, /) -> pl.LazyFrame:
    """``intervals.lock_holds`` as the scope test wants them (``_covering``)."""
    return _covering(intervals.lock_holds(events), "lock")


def atomic_regions(events: pl.LazyFrame, /) -> pl.LazyFrame:
    """``intervals.atomic_regions``, outermost only, as the scope test wants them."""
    return _covering(intervals.atomic_regions(events, outermost=True), "region")


_PAIR_COLS: Final = (c.SEQ, c.TS, "w", "pos", "n_reads", "n_writes", "next_read", "next_write")


def _pairs(acc: pl.LazyFrame) -> pl.LazyFrame:
    """Local pairs: each access with its unit's previous access to the same variable.

    ``acc`` is ``_timeline``: sorted by ``(var_key, seq)``, so a stable sort on
    ``unit_key`` alone orders it by ``(unit_key, var_key, seq)``. No names: the few
    pairs that are kept get them from the events.
    """
    same = (pl.col("unit_key") == pl.col("unit_key").shift(1)) & (
        pl.col("var_key") == pl.col("var_key").shift(1)
    )
    # Writes/reads strictly between the pair = running count before the second
    # access minus the running count at the first.
    w_before = pl.col("second_n_writes") - pl.col("second_w").cast(pl.Int64)
    r_before = pl.col("second_n_reads") - (~pl.col("second_w")).cast(pl.Int64)
    return (
        acc.sort("unit_key", maintain_order=True)
        .select(
            c.PID,
            "unit_key",
            same.alias("__same"),
            *(pl.col(col).shift(1).alias(f"first_{col}") for col in _PAIR_COLS),
            *(pl.col(col).alias(f"second_{col}") for col in _PAIR_COLS),
        )
        .filter(pl.col("__same"))
        .select(
            c.PID,
            "unit_key",
            "first_seq",
            "first_ts",
            "first_w",
            "first_pos",
            "second_seq",
            "second_ts",
            "second_w",
            "second_pos",
            (w_before - pl.col("first_n_writes")).alias("remote_writes"),
            (r_before - pl.col("first_n_reads")).alias("remote_reads"),
            pl.when(pl.col("first_next_write") < pl.col("second_pos"))
            .then(pl.col("first_next_write"))
            .alias("first_remote_write"),
            pl.when(pl.col("first_next_read") < pl.col("second_pos"))
            .then(pl.col("first_next_read"))
            .alias("first_remote_read"),
        )
    )


def _names(pairs: pl.LazyFrame, events: pl.LazyFrame) -> pl.LazyFrame:
    """Add ``var`` and ``unit`` to pairs, from the events of their second access."""
    names = events.filter(pl.col(c.OP).is_in([_R, _W])).select(
        c.PID, pl.col(c.SEQ).alias("second_seq"), c.VAR, c.UNIT
    )
    return pairs.join(names, on=[c.PID, "second_seq"], how="left")


def _with_scope(pairs: pl.LazyFrame, events: pl.LazyFrame) -> pl.LazyFrame:
    """Add ``atomic`` and ``locked``: whether one region / one lock hold covers the pair."""
    out = _sort_within(pairs, "unit_key", "first_seq")
    for name, spans in (("atomic", atomic_regions(events)), ("locked", lock_holds(events))):
        out = (
            out.join_asof(
                spans.select("unit_key", "start", pl.col("covers_until").alias("__cov")),
                left_on="first_seq",
                right_on="start",
                by="unit_key",
                strategy="backward",
                check_sortedness=False,  # both sorted by (unit_key, seq)
            )
            .with_columns((pl.col("__cov").fill_null(-1) > pl.col("second_seq")).alias(name))
            .drop("start", "__cov")
        )
    return out


def windows(events: pl.LazyFrame, /) -> pl.LazyFrame:
    """The read-modify-write windows of a trace, with their scope and remote accesses.

    Args:
        events: The loaded trace.

    Returns:
        One row per window (a local pair that is read-then-write, or inside one
        atomic region or lock hold): ``pid``, ``var``, ``unit``; ``first_seq``,
        ``first_ts``, ``first_op``, ``first_pos`` and the same for ``second_``;
        ``remote_reads``/``remote_writes`` (accesses of other units between the two);
        ``first_remote_read``/``first_remote_write`` (``pos`` in ``accesses``, or
        null); ``atomic`` and ``locked``. Sorted by ``(pid, var, first_seq)``.
    """
    is_rmw = ~pl.col("first_w") & pl.col("second_w")
    scoped = _with_scope(_pairs(_timeline(events)), events).filter(
        is_rmw | pl.col("atomic") | pl.col("locked")
    )
    return (
        _names(scoped, events)
        .select(
            c.PID,
            c.VAR,
            c.UNIT,
            *(
                _op(f"{p}w").alias(f"{p}{col}") if col == c.OP else pl.col(f"{p}{col}")
                for p in ("first_", "second_")
                for col in (c.SEQ, c.TS, c.OP, "pos")
            ),
            "remote_reads",
            "remote_writes",
            "first_remote_read",
            "first_remote_write",
            "atomic",
            "locked",
        )
        .sort(c.PID, c.VAR, "first_seq")
    )


def _pattern() -> pl.Expr:
    """The unserializable interleaving a window shows, or null."""
    fw, sw = pl.col("first_w"), pl.col("second_w")
    scoped = pl.col("atomic") | pl.col("locked")
    rw, rr = pl.col("remote_writes") > 0, pl.col("remote_reads") > 0
    return (
        pl.when(~fw & sw & rw)
        .then(pl.lit("RWW"))
        .when(scoped & ~fw & ~sw & rw)
        .then(pl.lit("RWR"))
        .when(scoped & fw & sw & rr)
        .then(pl.lit("WRW"))
        .when(scoped & fw & ~sw & rw)
        .then(pl.lit("WWR"))
        .otherwise(None)
    )


def _site(prefix: str) -> pl.Expr:
    return pl.struct(
        pl.col(f"{prefix}file").alias("file"),
        pl.col(f"{prefix}line").alias("line"),
        pl.col(f"{prefix}func").alias("func"),
    )


def _event(
    prefix: str, role: pl.Expr, *, unit: str = c.UNIT, unit_name: str = c.UNIT_NAME
) -> pl.Expr:
    # locks: filled in by ``analyze`` for the few events a report shows (``locks_held``)
    return event_struct(
        prefix,
        role,
        pid=pl.col(c.PID),
        unit=pl.col(unit),
        unit_name=pl.col(unit_name),
        target=pl.col(c.VAR),
        locks=pl.lit([], dtype=pl.List(pl.String)),
    )


def _site_text(prefix: str) -> pl.Expr:
    # The file as recorded, as every analysis writes it: the renderers show it relative
    # to their root, as they show the sites (``report.explanation_text``).
    return pl.format("{}:{} ({})", f"{prefix}file", f"{prefix}line", f"{prefix}func")


def _explanation() -> pl.Expr:
    """One plain sentence per finding, naming the units and the sites."""
    local, remote, var = pl.col(c.UNIT_NAME), pl.col("r_unit_name"), pl.col(c.VAR)
    p, r, s2 = _site_text("first_"), _site_text("r_"), _site_text("second_")
    pat = pl.col("pattern")
    return (
        pl.when(pat == "RWW")
        .then(
            pl.format(
                "{} wrote {} at {} between {}'s read at {} and its write at {}, so {}'s "
                "write, computed from the stale read, overwrote that update.",
                remote, var, r, local, p, s2, local,
            )
        )
        .when(pat == "RWR")
        .then(
            pl.format(
                "{} wrote {} at {} between two reads by {} at {} and {} in code meant to "
                "be atomic, so the two reads disagree.",
                remote, var, r, local, p, s2,
            )
        )
        .when(pat == "WRW")
        .then(
            pl.format(
                "{} read {} at {} between {}'s writes at {} and {} in code meant to be "
                "atomic, so it saw an intermediate value.",
                remote, var, r, local, p, s2,
            )
        )
        .otherwise(
            pl.format(
                "{} wrote {} at {} between {}'s write at {} and its read at {} in code "
                "meant to be atomic, so {} read back {}'s value instead of its own.",
                remote, var, r, local, p, s2, local, remote,
            )
        )
    )  # fmt: skip


_ROLES: Final = {
    # pattern: (first local, remote, second local)
    "RWW": ("local read", "remote write", "local write"),
    "RWR": ("local read", "remote write", "local read"),
    "WRW": ("local write", "remote read", "local write"),
    "WWR": ("local write", "remote write", "local read"),
}


def _role(i: int) -> pl.Expr:
    return pl.col("pattern").replace_strict(
        {pat: roles[i] for pat, roles in _ROLES.items()}, return_dtype=pl.String
    )


def _details(events: pl.LazyFrame, prefix: str) -> pl.LazyFrame:
    """Access details keyed by (pid, <prefix>seq), to join onto the few finding rows.

    The local (``first_``) access brings ``var``, ``unit`` and ``unit_name`` unprefixed;
    the remote one (``r_``) its ``r_unit`` and ``r_unit_name``.
    """
    cols = (c.VALUE, c.FILE, c.LINE, c.FUNC)
    names = {
        "first_": (c.VAR, c.UNIT, c.UNIT_NAME),
        "second_": (),
        "r_": ("r_unit", "r_unit_name"),
    }[prefix]
    return events.filter(pl.col(c.OP).is_in([_R, _W])).select(
        c.PID,
        pl.col(c.SEQ).alias(f"{prefix}seq"),
        *(pl.col(n.removeprefix("r_")).alias(n) for n in names),
        *(pl.col(col).alias(f"{prefix}{col}") for col in cols),
    )


def locks_held(events: pl.LazyFrame, /, *, at: pl.LazyFrame) -> pl.LazyFrame:
    """The (non-internal) locks each unit held at some of its events.

    Meant for a few events (those a report shows): each is paired with every lock its
    unit ever took.

    Args:
        events: The loaded trace.
        at: Rows ``unit``, ``seq``.

    Returns:
        ``unit``, ``seq``, ``locks`` (sorted lock names), for the events that held a lock.
    """
    at = at.select(c.UNIT, c.SEQ, _hash(c.UNIT).alias("unit_key")).collect().lazy()
    # only the lock events of the units asked about (a report shows a few)
    units = at.select(pl.col(c.UNIT).unique()).collect().to_series()
    holds = lock_holds(events.filter(pl.col(c.UNIT).is_in(units.implode()))).select(
        "unit_key",
        # one key per (unit, lock)
        (pl.col("unit_key") ^ _hash("key_name", _SEED_LOCK)).alias("key"),
        "key_name",
        "start",
        "end",
    )
    # Each event against each lock its unit ever took: the unit's last hold of that
    # lock starting before the event covers it when it ends after the event.
    locks = holds.select("unit_key", "key", "key_name").unique(subset=["key"])
    per_lock = at.join(locks, on="unit_key")
    return (
        _sort_within(per_lock, "key", c.SEQ)
        .join_asof(
            _sort_within(holds.select("key", "start", "end"), "key", "start"),
            left_on=c.SEQ,
            right_on="start",
            by="key",
            strategy="backward",
            check_sortedness=False,  # sorted by the by-key, then the asof key
        )
        .filter(pl.col("end") > pl.col(c.SEQ))
        .group_by(c.UNIT, c.SEQ)
        .agg(pl.col("key_name").sort().alias("locks"))
    )


def window_findings(events: pl.LazyFrame, /, *, kinds: Collection[str] = KINDS) -> pl.DataFrame:
    """Findings from windows: ``lost_update`` and ``atomicity_violation``, grouped.

    Args:
        events: The loaded trace.
        kinds: Which kinds to keep.

    Returns:
        Rows of ``FINDING_SCHEMA``: one per (kind, variable, the three code sites,
        pattern), with the number of windows, the first instance's events and the
        widest instance's (largest time between the two local accesses).
    """
    acc = _timeline(events)
    fw, sw = pl.col("first_w"), pl.col("second_w")
    rw, rr = pl.col("remote_writes") > 0, pl.col("remote_reads") > 0
    # Only pairs with the right remote access can give a finding: decide the scope
    # (two as-of joins) for those alone.
    candidate = (sw & rw & ~fw) | (fw & sw & rr) | (~sw & rw)
    remote = acc.select(
        pl.col("pos").alias("r_pos"),
        pl.col(c.SEQ).alias("r_seq"),
        pl.col(c.TS).alias("r_ts"),
        pl.col("w").alias("r_w"),
    )
    w = (
        _with_scope(_pairs(acc).filter(candidate), events)
        .with_columns(_pattern().alias("pattern"))
        .filter(pl.col("pattern").is_not_null())
        .with_columns(
            pl.when(pl.col("pattern") == "RWW")
            .then(pl.lit(LOST_UPDATE))
            .otherwise(pl.lit(ATOMICITY_VIOLATION))
            .alias("kind")
        )
        .filter(pl.col("kind").is_in(sorted(kinds)))
        .with_columns(
            pl.when(pl.col("pattern") == "WRW")
            .then(pl.col("first_remote_read"))
            .otherwise(pl.col("first_remote_write"))
            .alias("r_pos")
        )
        .join(remote, on="r_pos", how="left")
        .join(_details(events, "first_"), on=[c.PID, "first_seq"], how="left")
        .join(_details(events, "second_"), on=[c.PID, "second_seq"], how="left")
        .join(_details(events, "r_"), on=[c.PID, "r_seq"], how="left")
        .with_columns(_op(f"{p}w").alias(f"{p}op") for p in ("first_", "second_", "r_"))
    )
    key = [
        "kind",
        "pattern",
        c.VAR,
        *(f"{p}{col}" for p in ("first_", "r_", "second_") for col in (c.FILE, c.LINE, c.FUNC)),
    ]
    first = ["first_ts", c.PID, "first_seq"]
    widest = ["__width", "first_ts", c.PID, "first_seq"]
    # Group on plain columns, keeping the row numbers of the first and the widest
    # instance; only those rows get their events and explanation built (there can be
    # tens of thousands of instances, and a few hundred findings).
    inst = (
        w.with_columns((pl.col("second_ts") - pl.col("first_ts")).alias("__width"))
        .collect()
        .with_row_index("__i")
    )
    if inst.height == 0:  # nothing to group (a small or well-locked trace): ~10 queries fewer
        return pl.DataFrame(schema=FINDING_SCHEMA)
    grouped = (
        inst.lazy()
        .group_by(key)
        .agg(
            pl.len().cast(pl.Int64).alias("count"),
            pl.col("__i").sort_by(first).first().alias("__first"),
            pl.col("__i")
            .sort_by(widest, descending=[True, False, False, False])
            .first()
            .alias("__wide"),
            pl.col(c.UNIT_NAME).append(pl.col("r_unit_name")).unique().sort().alias("__all"),
        )
        .collect()
    )
    damage = _damage(inst, acc)
    grouped = pl.concat(
        [
            grouped,
            inst[grouped["__first"]]
            .select(c.PID, c.VAR)
            .join(damage, on=[c.PID, c.VAR], how="left", maintain_order="left")
            .select("lost_writes", "var_writes"),
        ],
        how="horizontal",
    )
    events_parts = [
        _event("first_", _role(0)),
        _event("r_", _role(1), unit="r_unit", unit_name="r_unit_name"),
        _event("second_", _role(2)),
    ]
    firsts = with_lists(
        inst[grouped["__first"]],
        {
            "events": events_parts,
            "sites": [_site("first_"), _site("r_"), _site("second_")],
        },
    ).select(
        "events",
        "sites",
        pl.concat_list(c.UNIT_NAME, "r_unit_name").alias("__pair"),
        _explanation().alias("explanation"),
    )
    worst = with_lists(inst[grouped["__wide"]], {"worst": events_parts}).select("worst")
    return (
        pl.concat([grouped, firsts, worst], how="horizontal")
        .lazy()
        .select(
            "kind",
            pl.col("kind")
            .replace_strict({k: CATALOGUE[k].severity for k in KINDS}, return_dtype=pl.String)
            .alias("severity"),
            c.VAR,
            pl.concat_list("__pair", "__all").list.unique(maintain_order=True).alias("units"),
            "sites",
            "count",
            "events",
            "worst",
            "explanation",
            pl.col("lost_writes").fill_null(0),
            pl.col("var_writes").fill_null(0),
        )
        .cast(dict(FINDING_SCHEMA))  # type: ignore[arg-type]
        .collect()
    )


def _damage(inst: pl.DataFrame, acc: pl.LazyFrame) -> pl.DataFrame:
    """The damage of the lost updates, per (process, variable) that has one.

    ``lost_writes``: the writes whose update the variable's final value does not
    contain. Each write is computed from the value its unit last saw: the latest write
    at or before that unit's previous access to the variable (its read, in a
    read-modify-write). Following that link back from the last write gives the writes
    the final value is built on; every other write was lost. For a variable only ever
    updated in place (a counter, ``model["weight"] += delta``) this is exactly how many
    updates the run lost. A write that is its unit's first access depends on nothing
    before it: the chain ends there. ``var_writes``: the variable's writes.
    """
    hit = inst.filter(pl.col("kind") == LOST_UPDATE).select(c.PID, c.VAR).unique()
    if hit.height == 0:
        return pl.DataFrame(
            schema={
                c.PID: pl.Int64,
                c.VAR: pl.String,
                "lost_writes": pl.Int64,
                "var_writes": pl.Int64,
            }
        )
    keys = hit.with_columns(_var_key().alias("var_key"))
    rows = (
        acc.join(keys.lazy().select("var_key"), on="var_key", how="semi")
        .sort("pos")
        .with_columns(
            pl.col("n_writes").shift(1).over(["var_key", "unit_key"]).alias("parent"),
            (pl.col("n_writes") - pl.col("w").cast(pl.Int64)).min().over("var_key").alias("base"),
        )
        .filter(pl.col("w"))
        .select("var_key", "n_writes", "parent", "base")
        .sort("var_key", maintain_order=True)  # each variable's writes together, in order
        .collect()
    )
    # One pass over plain lists (a frame per variable cost ~0.1 ms each: thousands).
    var_key, n_writes, parents, bases = (rows[col].to_list() for col in rows.columns)
    out = []
    start, n = 0, rows.height
    while start < n:
        end = start
        while end < n and var_key[end] == var_key[start]:
            end += 1
        parent = dict(zip(n_writes[start:end], parents[start:end], strict=True))
        base, k, kept = bases[start], n_writes[end - 1], 0
        while k is not None and k > base:
            kept += 1
            k = parent.get(k)
        out.append((var_key[start], end - start - kept, end - start))
        start = end
    damage = pl.DataFrame(
        out,
        schema={"var_key": pl.UInt64, "lost_writes": pl.Int64, "var_writes": pl.Int64},
        orient="row",
    )
    return keys.join(damage.cast({"var_key": keys.schema["var_key"]}), on="var_key").select(
        c.PID, c.VAR, "lost_writes", "var_writes"
    )


def run(
    events: pl.LazyFrame,
    /,
    *,
    kinds: Collection[str] | None = None,
    options: Options = DEFAULT,
) -> Iterator[pl.DataFrame]:
    """The analysis protocol (``tracelens.analyze.run``): ``window_findings`` of the
    kinds asked for, in one frame (``options`` has nothing for it)."""
    wanted = KINDS if kinds is None else tuple(k for k in KINDS if k in kinds)
    if wanted:
        yield window_findings(events, kinds=wanted)
