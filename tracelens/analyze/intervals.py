"""Intervals of one unit's execution: lock holds, atomic regions, read-modify-write windows.

The window analysis, the TUI's timeline and the Perfetto export all draw or test these;
they are defined once here, so that what the TUI shows is what the report says.

* A *lock hold* runs from a unit's ``acquire`` of a (non-internal) lock to that unit's
  next event on the lock (its ``release``); a hold never released lasts to the end.
  Internal locks (a ``Condition``'s or ``Queue``'s own) are the standard library's
  business, not the program's intent: they make no code atomic and are not shown.
* An *atomic region* runs from an ``atomic_begin`` to the matching ``atomic_end`` of
  the same unit (regions nest; ``depth`` 1 is the outermost); a region never ended
  lasts to the end.
* A *read-modify-write window* is a read of a variable followed by the same unit's
  next access to it, a write.

Every interval gives its ends as sequence numbers (``start_seq``, ``end_seq``, within
the unit's process), as global order keys (``start_g``, ``end_g``) and as timestamps
(``start_ts``, ``end_ts``). An interval still open at the end of the trace has
``end_seq`` and ``end_g`` ``NEVER`` and ``end_ts`` null.
"""

from __future__ import annotations

from typing import Final

import polars as pl

from tracelens import schema as s
from tracelens.analyze import columns as c
from tracelens.analyze.columns import G, global_order

__all__ = ["NEVER", "atomic_regions", "lock_holds", "rmw_windows"]

#: The end of an interval still open when the trace ends.
NEVER: Final = 2**62


def _ends(key: str | list[str], opens: pl.Expr) -> list[pl.Expr]:
    """The ends of intervals that each open at a row and close at the next row of the same
    ``key`` (rows in trace order)."""
    nxt = [pl.col(col).shift(-1).over(key) for col in (c.SEQ, G, c.TS)]
    return [
        pl.col(c.SEQ).alias("start_seq"),
        nxt[0].fill_null(NEVER).alias("end_seq"),
        pl.col(G).alias("start_g"),
        nxt[1].fill_null(NEVER).alias("end_g"),
        pl.col(c.TS).alias("start_ts"),
        nxt[2].alias("end_ts"),
        opens.alias("_opens"),
    ]


def lock_holds(events: pl.LazyFrame, /) -> pl.LazyFrame:
    """The continuous holds of non-internal locks.

    Args:
        events: The loaded trace (in trace order).

    Returns:
        ``pid``, ``unit``, ``lock``, ``kind``, the ends (module docstring), ``wait_ns``
        and the acquire's ``file``, ``line``, ``func``; in trace order of the acquires.
    """
    key = ["_hold"]
    return (
        events.filter(
            pl.col(c.OP).is_in([s.Op.ACQUIRE, s.Op.RELEASE])
            & ~pl.col(c.INTERNAL)
            & pl.col(c.OBJ).is_not_null()
        )
        .with_columns(
            global_order(),
            # one key per (unit, lock): a window over one Int64 is cheaper than over two
            # strings (a collision would merge two units' holds: odds ~n²/2⁶⁵)
            (pl.col(c.UNIT).hash(0x7A11E45) ^ pl.col(c.OBJ).hash(0x0B1EC7)).alias("_hold"),
        )
        .select(
            c.PID,
            c.UNIT,
            pl.col(c.OBJ).alias("lock"),
            c.KIND,
            *_ends(key, pl.col(c.OP) == s.Op.ACQUIRE),
            c.WAIT_NS,
            c.FILE,
            c.LINE,
            c.FUNC,
        )
        .filter("_opens")
        .drop("_opens")
    )


def atomic_regions(events: pl.LazyFrame, /, *, outermost: bool = False) -> pl.LazyFrame:
    """The ``tracelens.atomic`` regions.

    Args:
        events: The loaded trace (in trace order).
        outermost: Only the outermost region of each nest (``depth`` 1).

    Returns:
        ``pid``, ``unit``, ``region`` (its name), ``depth`` and the ends; in trace order
        of the begins.
    """
    begin = pl.col(c.OP) == s.Op.ATOMIC_BEGIN
    step = pl.when(begin).then(1).otherwise(-1)
    after = step.cum_sum().over(c.UNIT)  # nesting depth after the event
    # a begin opening depth d is closed by the next event that leaves depth d - 1: both
    # have the level d, and within one (unit, level) begins and ends alternate
    level = pl.when(begin).then(after).otherwise(after + 1)
    regions = (
        events.filter(pl.col(c.OP).is_in([s.Op.ATOMIC_BEGIN, s.Op.ATOMIC_END]))
        .with_columns(global_order(), level.alias("depth"))
        .filter(pl.col("depth") >= 1)  # an end without a begin closes nothing
        .select(
            c.PID,
            c.UNIT,
            pl.col(c.OBJ).alias("region"),
            "depth",
            *_ends([c.UNIT, "depth"], begin),
        )
        .filter("_opens")
        .drop("_opens")
    )
    return regions.filter(pl.col("depth") == 1) if outermost else regions


def rmw_windows(events: pl.LazyFrame, /) -> pl.LazyFrame:
    """The read-modify-write windows: a read, then the same unit's next access to the
    variable, a write.

    Args:
        events: The loaded trace (in trace order).

    Returns:
        ``pid``, ``unit``, ``var`` and the ends; in trace order of the reads.
    """
    key = [c.UNIT, c.VAR]
    read = pl.col(c.OP) == s.Op.READ
    next_write = (pl.col(c.OP).shift(-1).over(key) == s.Op.WRITE).fill_null(False)
    return (
        events.filter(pl.col(c.OP).is_in([s.Op.READ, s.Op.WRITE]) & pl.col(c.VAR).is_not_null())
        .with_columns(global_order())
        .select(c.PID, c.UNIT, c.VAR, *_ends(key, read & next_write))
        .filter("_opens")
        .drop("_opens")
    )
