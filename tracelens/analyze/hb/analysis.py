"""The predictive analyses on one shared pass: ``data_race``, ``inconsistent_locking``,
``lock_order_inversion`` and ``deadlock``.

The four share the pass over the synchronisation events (``shared.tables``), which
is most of their cost. ``run`` computes it once, then runs the analyses asked for side
by side and hands out each one's rows as soon as they are ready, the data races
first. When both ``data_race`` and ``inconsistent_locking`` run, a lock-set finding
that a data race already states (same variable and pair of code sites) is left out:
two unlocked accesses unordered by happens-before are both, and the lock-set finding
adds something only where happens-before (through incidental lock order) missed the
race. ``data_race`` hands the sites of its racy pairs to ``inconsistent_locking``
(``race_sites`` through a ``parallel.Handover``) as soon as it knows them, and the
lock-set analysis leaves those pairs out before checking them. A cycle of locks is one
``lock_order_inversion``: the lock-order analysis's, or when it did not see the cycle
(the nested acquires of a deadlock never succeeded), the deadlock's (``_new_cycles``).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator

import polars as pl

from tracelens.analyze.findings import empty_findings
from tracelens.analyze.hb.datarace import KIND as DATA_RACE
from tracelens.analyze.hb.datarace import data_race
from tracelens.analyze.hb.deadlock import HANG, deadlock, hang
from tracelens.analyze.hb.deadlock import KIND as DEADLOCK
from tracelens.analyze.hb.lockorder import KIND as LOCK_ORDER_INVERSION
from tracelens.analyze.hb.lockorder import lock_order_inversion
from tracelens.analyze.hb.lockset import KIND as INCONSISTENT_LOCKING
from tracelens.analyze.hb.lockset import inconsistent_locking
from tracelens.analyze.hb.pairs import race_sites
from tracelens.analyze.hb.shared import Tables, tables
from tracelens.analyze.kinds import kinds_of
from tracelens.analyze.options import DEFAULT, Options
from tracelens.analyze.parallel import Handover, Job

__all__ = ["KINDS", "predictive", "run"]

#: The kinds this analysis computes, in the order their rows come.
KINDS = kinds_of("predictive")

Leaf = Callable[[Tables, pl.LazyFrame], pl.DataFrame]


def run(
    events: pl.LazyFrame,
    /,
    *,
    kinds: Collection[str] | None = None,
    options: Options = DEFAULT,
) -> Iterator[pl.DataFrame]:
    """The analysis protocol (``tracelens.analyze.run``): rows of ``FINDING_SCHEMA``,
    one frame per kind asked for, each as soon as it is ready, the data races first.

    Args:
        events: The loaded trace (``Trace.events``).
        kinds: The kinds wanted (default all four); the others are not computed.
        options: Switches and limits (``Options``).
    """
    wanted = [k for k in KINDS if kinds is None or k in kinds]
    if not wanted:
        return
    # Not cached: the findings are computed eagerly, so the tables (the size of the
    # accesses) can go as soon as the last part is out, before other analyses run.
    t = tables(events, options=options, cache=False)
    n_events = events.select(pl.len()).collect().item()
    raced: Handover[pl.DataFrame] | None = None
    todo: list[Callable[[], pl.DataFrame]] = []
    if DATA_RACE in wanted:
        # It waits for the happens-before walk. As soon as its racy pairs are known it
        # hands their sites over, which the lock-set analysis asks for once its own
        # classes and keys are ready.
        handover: Handover[pl.DataFrame] = Handover()
        raced = handover

        def find_races() -> pl.DataFrame:
            try:
                return data_race(
                    t,
                    events,
                    options=options,
                    on_pairs=lambda p: handover.put(race_sites(p, t)),
                )
            except BaseException as e:
                if not handover.done:
                    handover.fail(e)
                raise

        todo.append(find_races)
    if INCONSISTENT_LOCKING in wanted:
        reported = raced.get if raced is not None else None
        todo.append(lambda: inconsistent_locking(t, events, options=options, reported=reported))
    if LOCK_ORDER_INVERSION in wanted:
        todo.append(lambda: lock_order_inversion(t, events, options=options))
    if DEADLOCK in wanted:
        # with the lock-order inversions behind the deadlocks, when those are asked for
        todo.append(
            lambda: deadlock(t, events, options=options).filter(pl.col("kind").is_in(wanted))
        )
    if HANG in wanted:
        todo.append(lambda: hang(t, events, options=options))
    cycles: set[str] = set()
    if not options.parallel(n_events):  # one after the other (memory)
        for task in todo:
            yield _new_cycles(task(), cycles)
    else:
        jobs = [Job(task, name="tracelens-predictive") for task in todo]
        for job in jobs:
            yield _new_cycles(job.result(), cycles)


def _new_cycles(rows: pl.DataFrame, cycles: set[str]) -> pl.DataFrame:
    """``rows`` without the lock-order inversions of cycles already given (added to
    ``cycles``): a deadlock whose nestings also succeeded earlier is a cycle the
    lock-order analysis reports itself, and the deadlock's own inversion of it (which
    comes after) would be a second finding of one cycle, at other sites when the
    successful nestings ran elsewhere."""
    inversion = pl.col("kind") == LOCK_ORDER_INVERSION
    if rows.height == 0 or not rows.select(inversion.any()).item():
        return rows
    kept = rows.filter(~inversion | ~pl.col("var").is_in(sorted(cycles)))
    cycles.update(kept.filter(inversion)["var"].to_list())
    return kept


def predictive(
    events: pl.LazyFrame,
    /,
    *,
    kinds: Collection[str] | None = None,
    options: Options = DEFAULT,
) -> pl.DataFrame:
    """All of ``run``'s rows in one frame (for tests and benchmarks)."""
    parts = list(run(events, kinds=kinds, options=options))
    return pl.concat(parts, how="vertical") if parts else empty_findings()
