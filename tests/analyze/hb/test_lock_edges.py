"""The lock edges the lock-set analysis counts: those that carry data or a hand-off.

Each correct program is quiet, and its racy twin stays reported. Traces are written by
hand as the recorder writes them (``test_patterns``).
"""

from __future__ import annotations

from tests.analyze.hb import hb_oracle as oracle
from tests.analyze.hb.test_patterns import assert_clean, findings, start, stop
from tests.traces import rows
from tracelens import schema as s
from tracelens.analyze.hb import data_race, inconsistent_locking

BOTH = (data_race, inconsistent_locking)


def publication(*, flag_locked: bool = True, value_first: bool = True):
    """t1 writes ``value`` then sets ``flag`` under L; t2 reads ``flag`` under L, then
    ``value`` without a lock (once-initialisation, a predicate already true)."""
    value = [("t1", "write", "value", {"line": 10})]
    set_flag = [
        ("t1", "acquire", "L", {"line": 11}),
        ("t1", "write", "flag", {"line": 12}),
        ("t1", "release", "L", {"line": 13}),
    ]
    writer = value + set_flag if value_first else set_flag + value
    read_flag = [("t2", "read", "flag", {"line": 21})]
    if flag_locked:
        read_flag = [
            ("t2", "acquire", "L", {"line": 20}),
            *read_flag,
            ("t2", "release", "L", {"line": 22}),
        ]
    return [
        *start("t1", "t2"),
        *writer,
        *read_flag,
        ("t2", "read", "value", {"line": 23}),
        *stop("t1", "t2"),
    ]


def test_publication_through_a_lock_is_quiet():
    """A value published by a flag set and read under one lock reports nothing."""
    assert_clean(publication())


def test_publication_with_the_flag_read_without_the_lock_is_reported():
    """Reading the flag without the lock: the flag and the value race."""
    got = findings(publication(flag_locked=False), BOTH)
    assert {f["var"] for f in got["data_race"]} == {"flag", "value"}


def test_publication_with_the_value_written_after_the_flag_is_reported():
    """Writing the value after the flag is set: the value races with its read."""
    got = findings(publication(value_first=False), BOTH)
    assert [f["var"] for f in got["data_race"]] == ["value"]


def test_an_incidental_lock_order_still_hides_nothing_from_the_lock_set_analysis():
    """A critical section that reads nothing the other wrote carries no data: still reported."""
    steps = [
        *start("t1", "t2"),
        ("t1", "write", "value", {"line": 10}),
        ("t1", "acquire", "L"),
        ("t1", "write", "flag"),
        ("t1", "release", "L"),
        ("t2", "acquire", "L"),
        ("t2", "write", "flag"),
        ("t2", "release", "L"),
        ("t2", "read", "value", {"line": 23}),
    ]
    got = findings(steps, BOTH)
    assert got["data_race"] == []
    assert [f["var"] for f in got["inconsistent_locking"]] == ["value"]


def binary_semaphore(*, read_before_acquire: bool = False):
    """Main takes L, starts t1, and waits on L; t1 writes ``x`` and releases L (a
    ``Lock`` used as a binary semaphore); main reads ``x``."""
    wait = [("t0", "acquire", "L", {"line": 5})]
    read = [("t0", "read", "x", {"line": 6})]
    return [
        ("t0", "acquire", "L", {"line": 1}),
        *start("t1"),
        ("t1", "write", "x", {"line": 10}),
        ("t1", "release", "L", {"line": 11}),
        *(read + wait if read_before_acquire else wait + read),
        ("t0", "release", "L", {"line": 7}),
        *stop("t1"),
    ]


def test_a_lock_released_by_another_unit_hands_off():
    """A release by a unit that does not hold the lock orders it before the next acquire."""
    assert_clean(binary_semaphore())


def test_a_read_before_the_hand_off_is_reported():
    """Reading before taking the lock the other unit released: a data race."""
    got = findings(binary_semaphore(read_before_acquire=True), BOTH)
    assert [f["var"] for f in got["data_race"]] == ["x"]


def test_the_oracle_counts_the_same_lock_edges():
    """The reference implementation finds the publication and the hand-off edges."""
    pub = rows(publication())
    edges = oracle.handing_lock_edges(pub)
    (acq,) = [i for i, r in enumerate(pub) if r["op"] == s.Op.ACQUIRE and r["unit"] == "t2"]
    (rel,) = [i for i, r in enumerate(pub) if r["op"] == s.Op.RELEASE and r["unit"] == "t1"]
    assert edges == {acq: [rel]}
    assert oracle.lockset_violations(pub) == {}
    sem = rows(binary_semaphore())
    assert oracle.lockset_violations(sem) == {}


def test_a_publication_does_not_excuse_a_variable_the_lock_guards_elsewhere():
    """x written under L and read without it stays reported, though a section of L that
    read another unit's data ordered the two in this run."""
    steps = [
        *start("t1", "t2"),
        ("t1", "acquire", "L"),
        ("t1", "write", "x", {"line": 10}),
        ("t1", "write", "y"),
        ("t1", "release", "L"),
        ("t2", "acquire", "L"),
        ("t2", "read", "y"),
        ("t2", "release", "L"),
        ("t2", "read", "x", {"line": 20}),
    ]
    got = findings(steps, BOTH)
    assert got["data_race"] == []
    assert [(f["var"], [s["line"] for s in f["sites"]]) for f in got["inconsistent_locking"]] == [
        ("x", [10, 20])
    ]
