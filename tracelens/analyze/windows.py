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
``(pid, var, seq)`` and numbered (``pos``); running counts of reads and writes give
"how many remote writes lie between two positions" by subtraction, and a backward
fill gives "the first write after a position". A second sort by ``(unit, var, seq)``
pairs each access with its unit's previous one (``shift``). Lock holds become
intervals (acquire, next release) whose running maximum end, found with a backward
``join_asof`` on the window's first access, says whether one hold covers the window.
Windows are then grouped into findings: one per kind, variable and code sites, with
a count and the first and widest instances.
"""

from __future__ import annotations

from typing import Final

import polars as pl

from tracelens import schema as s
from tracelens.analyze.findings import ERROR, EVENT_DTYPE, FINDING_SCHEMA, WARNING

__all__ = [
    "ATOMICITY_VIOLATION",
    "LOST_UPDATE",
    "accesses",
    "atomicity_violation",
    "lock_holds",
    "lost_update",
    "window_findings",
    "windows",
]

LOST_UPDATE: Final = "lost_update"
ATOMICITY_VIOLATION: Final = "atomicity_violation"
#: The finding kinds this module produces.
KINDS: Final = (LOST_UPDATE, ATOMICITY_VIOLATION)

_R, _W = s.Op.READ, s.Op.WRITE
_NEVER: Final = 2**62  # "released after the end of the trace"

# Columns carried for each access of a window (first local, remote, second local).
_DETAIL: Final = ("seq", "ts", "pid", "unit", "unit_name", "op", "value", "file", "line", "func")


def accesses(events: pl.LazyFrame, /) -> pl.LazyFrame:
    """Every variable's timeline: its reads and writes, numbered in (pid, var, seq) order.

    Args:
        events: The loaded trace (``Trace.events``).

    Returns:
        One row per access with ``pos`` (the row's place in the ``(pid, var, seq)``
        order, so consecutive accesses of a variable have consecutive ``pos``), the
        running counts ``n_reads``/``n_writes`` (up to and including the row) and
        ``next_read``/``next_write`` (``pos`` of the first read/write after the row,
        any variable: compare with the window's end), plus the access columns.
    """
    is_r = pl.col("op") == _R
    is_w = pl.col("op") == _W
    return (
        events.filter(pl.col("op").is_in([_R, _W]))
        .select(
            "pid", "var", "seq", "ts", "unit", "unit_name", "op", "value", "file", "line", "func"
        )
        .sort("pid", "var", "seq")
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


def lock_holds(events: pl.LazyFrame, /) -> pl.LazyFrame:
    """Continuous lock holds of each unit as sequence intervals.

    A hold runs from an ``acquire`` of a non-internal lock to the unit's next event on
    that lock (its ``release``); a hold never released ends "never". Internal locks
    (a ``Condition``'s or ``Queue``'s own) are the standard library's business, not the
    program's intent, so they do not make a scope.

    Args:
        events: The loaded trace.

    Returns:
        Rows ``unit``, ``lock``, ``acquired``, ``released`` sorted by ``(unit, acquired)``,
        with ``covers_until``: the latest ``released`` of this and every earlier hold
        of the unit (a window starting after ``acquired`` lies in one hold exactly
        when it ends before ``covers_until``).
    """
    same = (pl.col("unit") == pl.col("unit").shift(-1)) & (pl.col("obj") == pl.col("obj").shift(-1))
    return (
        events.filter(
            pl.col("op").is_in([s.Op.ACQUIRE, s.Op.RELEASE])
            & ~pl.col("internal")
            & pl.col("obj").is_not_null()
        )
        .select("unit", "obj", "seq", "op")
        .sort("unit", "obj", "seq")
        .with_columns(
            pl.when(same).then(pl.col("seq").shift(-1)).otherwise(_NEVER).alias("released")
        )
        .filter(pl.col("op") == s.Op.ACQUIRE)
        .select("unit", pl.col("obj").alias("lock"), pl.col("seq").alias("acquired"), "released")
        .sort("unit", "acquired")
        .with_columns(pl.col("released").cum_max().over("unit").alias("covers_until"))
    )


def _atomic_regions(events: pl.LazyFrame) -> pl.LazyFrame:
    """For each access: the number of the unit's outermost atomic region it is in, or null."""
    step = (
        pl.when(pl.col("op") == s.Op.ATOMIC_BEGIN)
        .then(1)
        .when(pl.col("op") == s.Op.ATOMIC_END)
        .then(-1)
        .otherwise(0)
    )
    depth = pl.col("__step").cum_sum().over("unit")
    outer_begin = (pl.col("__step") == 1) & (pl.col("__depth") == 1)
    return (
        events.filter(pl.col("op").is_in([_R, _W, s.Op.ATOMIC_BEGIN, s.Op.ATOMIC_END]))
        .select("unit", "seq", "op")
        .sort("unit", "seq")
        .with_columns(step.alias("__step"))
        .with_columns(depth.alias("__depth"))
        .with_columns(outer_begin.cast(pl.Int64).cum_sum().over("unit").alias("__region"))
        .filter(pl.col("op").is_in([_R, _W]))
        .select(
            "unit",
            "seq",
            pl.when(pl.col("__depth") > 0).then(pl.col("__region")).alias("region"),
        )
    )


def windows(events: pl.LazyFrame, /, *, with_remote: bool = True) -> pl.LazyFrame:
    """Local pairs of accesses with their scope and the remote accesses between them.

    Args:
        events: The loaded trace.
        with_remote: Kept for future use (remote columns are always computed).

    Returns:
        One row per local pair that is a window (read-then-write, or scoped), with
        ``pid``, ``var``, ``unit``, ``first_*``/``second_*`` columns for the two local
        accesses (``seq``, ``ts``, ``op``, ``pos``, ...), ``atomic`` and ``locked``
        (the scope), ``remote_reads``/``remote_writes`` (counts between the two) and
        ``first_remote_read``/``first_remote_write`` (``pos`` of the first of each, or
        null). Sorted by ``(pid, var, first_seq)``.
    """
    acc = accesses(events).join(_atomic_regions(events), on=["unit", "seq"], how="left")
    by_unit = acc.sort("unit", "var", "seq")
    same = (pl.col("unit") == pl.col("unit").shift(1)) & (pl.col("var") == pl.col("var").shift(1))
    prev = [
        pl.col(c).shift(1).alias(f"first_{c}")
        for c in (*_DETAIL, "pos", "n_reads", "n_writes", "next_read", "next_write", "region")
        if c not in ("pid", "unit", "unit_name")
    ]
    pairs = (
        by_unit.with_columns(same.alias("__same"), *prev)
        .filter(pl.col("__same"))
        .rename({c: f"second_{c}" for c in ("seq", "ts", "op", "value", "file", "line", "func")})
        .rename({"pos": "second_pos", "region": "second_region"})
    )
    is_rmw = (pl.col("first_op") == _R) & (pl.col("second_op") == _W)
    atomic = pl.col("first_region").is_not_null() & (
        pl.col("first_region") == pl.col("second_region")
    )
    holds = lock_holds(events).select("unit", "acquired", "covers_until")
    # Writes before the second access = its running count minus itself.
    w_before_second = pl.col("n_writes") - (pl.col("second_op") == _W).cast(pl.Int64)
    r_before_second = pl.col("n_reads") - (pl.col("second_op") == _R).cast(pl.Int64)
    out = (
        pairs.with_columns(atomic.alias("atomic"))
        .sort("unit", "first_seq")
        .join_asof(
            holds,
            left_on="first_seq",
            right_on="acquired",
            by="unit",
            strategy="backward",
            check_sortedness=False,  # sorted by (unit, seq): sorted within each unit
        )
        .with_columns(
            (pl.col("covers_until").fill_null(-1) > pl.col("second_seq")).alias("locked"),
            (w_before_second - pl.col("first_n_writes")).alias("remote_writes"),
            (r_before_second - pl.col("first_n_reads")).alias("remote_reads"),
        )
        .with_columns(
            pl.when(pl.col("first_next_write") < pl.col("second_pos"))
            .then(pl.col("first_next_write"))
            .alias("first_remote_write"),
            pl.when(pl.col("first_next_read") < pl.col("second_pos"))
            .then(pl.col("first_next_read"))
            .alias("first_remote_read"),
        )
        .filter(is_rmw | pl.col("atomic") | pl.col("locked"))
        .select(
            "pid",
            "var",
            "unit",
            "unit_name",
            *(f"first_{c}" for c in _DETAIL if c not in ("pid", "unit", "unit_name")),
            "first_pos",
            *(f"second_{c}" for c in _DETAIL if c not in ("pid", "unit", "unit_name")),
            "second_pos",
            "atomic",
            "locked",
            "remote_reads",
            "remote_writes",
            "first_remote_read",
            "first_remote_write",
        )
        .sort("pid", "var", "first_seq")
    )
    return out


def _pattern() -> pl.Expr:
    """The unserializable interleaving a window shows, or null."""
    f, sec = pl.col("first_op"), pl.col("second_op")
    scoped = pl.col("atomic") | pl.col("locked")
    rw, rr = pl.col("remote_writes") > 0, pl.col("remote_reads") > 0
    return (
        pl.when((f == _R) & (sec == _W) & rw)
        .then(pl.lit("RWW"))
        .when(scoped & (f == _R) & (sec == _R) & rw)
        .then(pl.lit("RWR"))
        .when(scoped & (f == _W) & (sec == _W) & rr)
        .then(pl.lit("WRW"))
        .when(scoped & (f == _W) & (sec == _R) & rw)
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
    prefix: str, role: pl.Expr, *, unit: str = "unit", unit_name: str = "unit_name"
) -> pl.Expr:
    return pl.struct(
        role.alias("role"),
        pl.col(f"{prefix}seq").alias("seq"),
        pl.col(f"{prefix}ts").alias("ts"),
        pl.col("pid").alias("pid"),
        pl.col(unit).alias("unit"),
        pl.col(unit_name).alias("unit_name"),
        pl.col(f"{prefix}op").alias("op"),
        pl.col("var").alias("target"),
        pl.col(f"{prefix}value").alias("value"),
        pl.col(f"{prefix}file").alias("file"),
        pl.col(f"{prefix}line").alias("line"),
        pl.col(f"{prefix}func").alias("func"),
        pl.lit([], dtype=pl.List(pl.String)).alias("locks"),
    ).cast(EVENT_DTYPE)


def _site_text(prefix: str) -> pl.Expr:
    # The file's last path part keeps the sentence readable; ``sites`` has the full path.
    base = pl.col(f"{prefix}file").str.split("/").list.last()
    return pl.format("{}:{} ({})", base, f"{prefix}line", f"{prefix}func")


def _explanation() -> pl.Expr:
    """One plain sentence per finding, naming the units and the sites."""
    local, remote, var = pl.col("unit_name"), pl.col("r_unit_name"), pl.col("var")
    p, r, c = _site_text("first_"), _site_text("r_"), _site_text("second_")
    pat = pl.col("pattern")
    return (
        pl.when(pat == "RWW")
        .then(
            pl.format(
                "{} wrote {} at {} between {}'s read at {} and its write at {}, so {}'s "
                "write, computed from the stale read, overwrote that update.",
                remote, var, r, local, p, c, local,
            )
        )
        .when(pat == "RWR")
        .then(
            pl.format(
                "{} wrote {} at {} between two reads by {} at {} and {} in code meant to "
                "be atomic, so the two reads disagree.",
                remote, var, r, local, p, c,
            )
        )
        .when(pat == "WRW")
        .then(
            pl.format(
                "{} read {} at {} between {}'s writes at {} and {} in code meant to be "
                "atomic, so it saw an intermediate value.",
                remote, var, r, local, p, c,
            )
        )
        .otherwise(
            pl.format(
                "{} wrote {} at {} between {}'s write at {} and its read at {} in code "
                "meant to be atomic, so {} read back {}'s value instead of its own.",
                remote, var, r, local, p, c, local, remote,
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


def window_findings(events: pl.LazyFrame, /, *, kinds: tuple[str, ...] = KINDS) -> pl.LazyFrame:
    """Findings from windows: ``lost_update`` and ``atomicity_violation``, grouped.

    Args:
        events: The loaded trace.
        kinds: Which kinds to keep.

    Returns:
        Rows of ``FINDING_SCHEMA``: one per (kind, variable, the three code sites,
        pattern), with the number of windows, the first instance's events and the
        widest instance's (largest time between the two local accesses).
    """
    acc = accesses(events).select(
        pl.col("pos").alias("r_pos"),
        *(pl.col(c).alias(f"r_{c}") for c in _DETAIL if c != "pid"),
    )
    w = (
        windows(events)
        .with_columns(_pattern().alias("pattern"))
        .filter(pl.col("pattern").is_not_null())
        .with_columns(
            pl.when(pl.col("pattern") == "RWW")
            .then(pl.lit(LOST_UPDATE))
            .otherwise(pl.lit(ATOMICITY_VIOLATION))
            .alias("kind")
        )
        .filter(pl.col("kind").is_in(list(kinds)))
        .with_columns(
            pl.when(pl.col("pattern") == "WRW")
            .then(pl.col("first_remote_read"))
            .otherwise(pl.col("first_remote_write"))
            .alias("r_pos")
        )
        .join(acc, on="r_pos", how="left")
    )
    events_expr = pl.concat_list(
        _event("first_", _role(0)),
        _event("r_", _role(1), unit="r_unit", unit_name="r_unit_name"),
        _event("second_", _role(2)),
    )
    key = [
        "kind",
        "pattern",
        "var",
        *(f"{p}{c}" for p in ("first_", "r_", "second_") for c in ("file", "line", "func")),
    ]
    first = ["first_ts", "pid", "first_seq"]
    widest = ["__width", "first_ts", "pid", "first_seq"]
    grouped = (
        w.with_columns(
            events_expr.alias("__events"),
            pl.concat_list("unit_name", "r_unit_name").alias("__pair"),
            _explanation().alias("__explanation"),
            (pl.col("second_ts") - pl.col("first_ts")).alias("__width"),
        )
        .group_by(key)
        .agg(
            pl.len().cast(pl.Int64).alias("count"),
            pl.col("__events").sort_by(first).first().alias("events"),
            pl.col("__events")
            .sort_by(widest, descending=[True, False, False, False])
            .first()
            .alias("worst"),
            pl.col("__explanation").sort_by(first).first().alias("explanation"),
            pl.col("__pair").sort_by(first).first().alias("__first_pair"),
            pl.col("unit_name").append(pl.col("r_unit_name")).unique().sort().alias("__all"),
        )
    )
    return grouped.select(
        "kind",
        pl.when(pl.col("kind") == LOST_UPDATE)
        .then(pl.lit(ERROR))
        .otherwise(pl.lit(WARNING))
        .alias("severity"),
        "var",
        pl.concat_list("__first_pair", "__all").list.unique(maintain_order=True).alias("units"),
        pl.concat_list(_site("first_"), _site("r_"), _site("second_")).alias("sites"),
        "count",
        "events",
        "worst",
        "explanation",
    ).cast(dict(FINDING_SCHEMA))  # type: ignore[arg-type]


def lost_update(events: pl.LazyFrame, /) -> pl.LazyFrame:
    """``lost_update`` findings (read, remote write, local write). See ``window_findings``."""
    return window_findings(events, kinds=(LOST_UPDATE,))


def atomicity_violation(events: pl.LazyFrame, /) -> pl.LazyFrame:
    """``atomicity_violation`` findings (RWR, WRW, WWR in scoped windows)."""
    return window_findings(events, kinds=(ATOMICITY_VIOLATION,))
