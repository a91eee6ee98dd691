"""The shared pass (``hb.tables``, ``hb.predictive``) gives what each analysis gives alone."""

from __future__ import annotations

import gc

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.strategies import programs, schedule
from tests.traces import frame
from tracelens.analyze.hb import (
    KINDS,
    clear_cache,
    data_race,
    deadlock,
    hang,
    inconsistent_locking,
    lock_order_inversion,
    predictive,
    tables,
)
from tracelens.analyze.hb.shared import cache_entries
from tracelens.analyze.options import Options

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ALL = (data_race, inconsistent_locking, lock_order_inversion, deadlock, hang)


def _rows(df: pl.DataFrame) -> list[dict]:
    return sorted(df.to_dicts(), key=repr)


def _alone_rows(leaf, events: pl.LazyFrame, options: Options | None = None) -> pl.DataFrame:
    """One predictive analysis on its own, with a shared pass of its own."""
    options = options or Options()
    return leaf(tables(events, options=options, cache=False), events, options=options)


def _sites(row: dict) -> tuple:
    return (row["var"], frozenset((s["file"], s["line"], s["func"]) for s in row["sites"]))


def _alone(steps, kinds=KINDS) -> list[dict]:
    """Each analysis on its own frame object, so that nothing is shared or cached; then,
    when both kinds are asked for, the lock-set rows that a data race row states (same
    variable, same sites in any order) left out, the plain way."""
    out = []
    cycles: set[str] = set()  # a cycle is one inversion: the first analysis's to give it
    for a in ALL:
        if a.__name__ in kinds:
            clear_cache()
            rows = _rows(_alone_rows(a, frame(steps)))
            if "lock_order_inversion" in kinds:
                inversions = {r["var"] for r in rows if r["kind"] == "lock_order_inversion"}
                rows = [
                    r for r in rows if r["kind"] != "lock_order_inversion" or r["var"] not in cycles
                ]
                cycles |= inversions
            out += rows
    if "data_race" in kinds:
        raced = {_sites(r) for r in out if r["kind"] == "data_race"}
        out = [r for r in out if r["kind"] != "inconsistent_locking" or _sites(r) not in raced]
    return sorted(out, key=repr)


@SETTINGS
@given(programs())
def test_predictive_equals_each_analysis_alone(prog):
    """The shared pass gives the rows of each analysis alone, less the restated lock-set rows."""
    steps = schedule(prog)
    clear_cache()
    assert _rows(predictive(frame(steps))) == _alone(steps)


@SETTINGS
@given(programs(), st.sets(st.sampled_from(KINDS)))
def test_predictive_computes_the_kinds_asked_for(prog, kinds):
    """Asked for some kinds, it gives what those analyses give alone (no data race asked:
    the lock-set rows are all there)."""
    steps = schedule(prog)
    clear_cache()
    assert _rows(predictive(frame(steps), kinds=kinds)) == _alone(steps, kinds)


def test_predictive_kinds_and_a_deadlock_and_inversion():
    """A trace with every predictive kind gives them all, the rows the analyses give alone."""
    steps = [
        ("t0", "fork", "t1"),
        ("t0", "fork", "t2"),
        ("t1", "write", "x", {"line": 5}),
        ("t2", "write", "x", {"line": 6}),
        ("t1", "write", "y", {"line": 7}),
        ("t1", "acquire", "A"),
        ("t1", "acquire", "B"),
        ("t1", "release", "B"),
        ("t1", "release", "A"),
        ("t2", "acquire", "B"),
        # after t1's release of B, holding B: no data race, a lock-set violation
        ("t2", "write", "y", {"line": 8}),
        ("t2", "acquire", "A"),
        ("t2", "release", "A"),
        ("t2", "release", "B"),
        ("t1", "acquire", "A"),
        ("t2", "acquire", "B"),
        ("t1", "acquire_try", "B"),
        ("t2", "acquire_try", "A"),
        ("t0", "wait", "E", {"kind": "event"}),  # and main waits on an event: a hang too
    ]
    clear_cache()
    got = predictive(frame(steps))
    assert set(got["kind"]) == set(KINDS)
    assert _rows(got) == _alone(steps)


def test_tables_are_computed_once_per_frame():
    """tables() is cached per frame object and per options, not per frame content."""
    clear_cache()
    ev = frame([("t1", "write", "x"), ("t2", "write", "x")])
    t = tables(ev)
    assert tables(ev) is t
    assert tables(ev, options=Options(internal_locks=False)) is not t
    other = frame([("t1", "write", "x"), ("t2", "write", "x")])
    assert tables(other) is not t


def test_predictive_keeps_no_tables_in_the_cache():
    """predictive() computes its own tables and leaves the cache as it was."""
    clear_cache()
    other = frame([("t1", "write", "x"), ("t2", "write", "x")])
    n = cache_entries()
    predictive(other)  # computes its own tables, keeps none
    assert cache_entries() == n


def test_cached_tables_go_with_their_frames():
    """Once their frames are collected, the frames' tables leave the cache."""
    clear_cache()
    ev = frame([("t1", "write", "x"), ("t2", "write", "x")])
    tables(ev)
    tables(ev, options=Options(internal_locks=False))
    other = frame([("t1", "write", "x"), ("t2", "write", "x")])
    tables(other)
    n = cache_entries()
    del ev, other
    gc.collect()
    assert cache_entries() < n  # entries go with their frames


def test_shared_tables_can_be_passed_explicitly():
    """data_race and inconsistent_locking given shared tables give the rows they give alone."""
    steps = [("t1", "write", "x"), ("t2", "read", "x")]
    ev = frame(steps)
    t = tables(ev)
    assert _rows(data_race(t, ev)) == _rows(_alone_rows(data_race, frame(steps)))
    assert _rows(inconsistent_locking(t, ev)) == _rows(
        _alone_rows(inconsistent_locking, frame(steps))
    )


def _rows_with(analysis, steps, **limits) -> list[dict]:
    """``analysis``'s rows on ``steps`` with some of the ``Options`` limits set."""
    options = Options(**limits)
    clear_cache()
    ev = frame(steps)
    if analysis is predictive:
        return _rows(predictive(ev, options=options))
    return _rows(_alone_rows(analysis, ev, options))


def _predictive_rows(steps, max_mask_locks: int, word_bits: int = 63) -> list[dict]:
    return _rows_with(predictive, steps, max_mask_locks=max_mask_locks, mask_word_bits=word_bits)


@SETTINGS
@given(programs())
def test_lock_sets_in_python_equal_lock_sets_in_polars(prog):
    """Beyond ``Options.max_mask_locks`` locks the pass tracks held locks itself: same findings."""
    steps = schedule(prog)
    assert _predictive_rows(steps, 0) == _predictive_rows(steps, 63)


@SETTINGS
@given(programs())
def test_lock_sets_over_several_mask_words(prog):
    """Masks split over several Int64 words (here one lock a word) give the same findings."""
    steps = schedule(prog)
    assert _predictive_rows(steps, 63, word_bits=1) == _predictive_rows(steps, 0)


def many_locks():
    """70 locks (more than one Int64 mask word): nested pairs, an inversion, a violation."""
    steps = [("t0", "fork", "t1"), ("t0", "fork", "t2")]
    for i in range(70):
        a, b = f"L{i:02}", f"L{(i + 1) % 70:02}"
        steps += [
            ("t1", "acquire", a),
            ("t1", "acquire", b),
            ("t1", "write", f"v{i}"),
            ("t1", "release", b),
            ("t1", "release", a),
        ]
    steps += [
        ("t2", "acquire", "L02"),
        ("t2", "acquire", "L01"),
        ("t2", "release", "L01"),
        ("t2", "release", "L02"),
        ("t2", "acquire", "L50"),
        ("t2", "write", "v3"),
        ("t2", "release", "L50"),
    ]
    return steps


def test_many_locks():
    """With 70 locks, lock sets in masks and lock sets tracked in Python give the same rows."""
    steps = many_locks()
    rows = _predictive_rows(steps, 1000)
    assert rows == _predictive_rows(steps, 0)


def test_many_locks_finds_the_inversion_and_the_violation():
    """With 70 locks, the L01/L02 inversion and the v3 violation, with its locks, are found."""
    rows = _predictive_rows(many_locks(), 1000)
    kinds = {(r["kind"], r["var"]) for r in rows}
    assert ("inconsistent_locking", "v3") in kinds
    assert ("lock_order_inversion", "L01 -> L02 -> L01") in kinds
    (f,) = [r for r in rows if r["kind"] == "inconsistent_locking"]
    assert [e["locks"] for e in f["events"]] == [["L03", "L04"], ["L50"]]


def test_traces_without_accesses_or_synchronisation():
    """A trace with one access, or only synchronisation, gives no predictive rows."""
    for steps in (
        [("t1", "write", "x")],
        [("t1", "acquire", "L"), ("t1", "release", "L")],
        [("t1", "begin", "t1")],
        [("t0", "fork", "t1"), ("t1", "send", "q"), ("t0", "recv", "q")],
    ):
        clear_cache()
        assert predictive(frame(steps)).height == 0


@SETTINGS
@given(programs())
def test_lock_set_pairs_checked_in_batches_of_variables(prog):
    """Big traces check inconsistent_locking's pairs a batch of variables at a time: same rows."""
    steps = schedule(prog)
    whole = _rows_with(inconsistent_locking, steps)
    # several batches even for a few accesses
    batched = _rows_with(inconsistent_locking, steps, batch_accesses=2)
    assert batched == whole


@SETTINGS
@given(programs())
def test_walk_in_the_background_or_waited_for_gives_the_same_rows(prog):
    """Small traces leave the happens-before walk running while the lock-set analyses
    start; big ones wait for it inside tables(): the findings are the same."""
    steps = schedule(prog)
    background = _rows_with(predictive, steps)
    waited = _rows_with(predictive, steps, parallel_max_events=0)
    assert background == waited


@SETTINGS
@given(programs())
def test_data_race_without_the_common_lock_shortcut_finds_the_same(prog):
    """Pairs that held a common lock are skipped before the clock check (they are
    ordered by it); with the shortcut off (too many lock sets) the findings are equal."""
    steps = schedule(prog)
    with_shortcut = _rows_with(data_race, steps)
    assert _rows_with(data_race, steps, max_lockset_pairs_sets=0) == with_shortcut


@SETTINGS
@given(programs())
def test_lock_sets_apart_row_by_row_equal_the_table_of_disjoint_pairs(prog):
    """Beyond ``Options.max_lockset_pairs_sets`` lock sets, inconsistent_locking intersects the two
    sets row by row instead of joining a table of all disjoint pairs: same findings."""
    steps = schedule(prog)
    by_table = _rows_with(inconsistent_locking, steps)
    assert _rows_with(inconsistent_locking, steps, max_lockset_pairs_sets=0) == by_table


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.integers(0, (1 << 300) - 1), min_size=1, max_size=12),
    st.lists(st.tuples(st.integers(0, 11), st.integers(0, 11)), max_size=60),
)
def test_apart_masks_keeps_the_pairs_the_python_reference_keeps(masks, pairs):
    """Pairs of held sets (up to 300 locks: several words) sharing no lock: polars' words
    and witnesses give the rows, in order, of the pair-by-pair Python check."""
    from tracelens.analyze.hb.locksets import apart_masks, apart_masks_reference

    pairs = [(a % len(masks), b % len(masks)) for a, b in pairs]
    frame = pl.DataFrame(pairs, schema={"x": pl.Int64, "y": pl.Int64}, orient="row")
    got = apart_masks(frame, "x", "y", masks)
    assert got.equals(apart_masks_reference(frame, "x", "y", masks))
