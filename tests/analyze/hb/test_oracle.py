"""The polars analyses against the plain-Python oracles on Hypothesis-generated traces."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from tests.analyze.hb import hb_oracle as oracle
from tests.strategies import programs, schedule, short_lived_programs
from tests.traces import frame, rows
from tracelens.analyze.hb import data_race, inconsistent_locking, tables

pytestmark = pytest.mark.usefixtures("walk_path")  # on the compiled walk and the Python one

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def first_per_var(findings) -> dict[str, tuple[int, int]]:
    """var -> (partner seq, access seq) of the earliest instance over its findings."""
    pairs = [(f["events"][0]["seq"], f["events"][1]["seq"], f["var"]) for f in findings]
    return oracle.first_per_var(pairs)


@SETTINGS
@given(programs())
def test_data_race_matches_oracle(prog):
    """data_race's earliest instance of each variable is the oracle's first race on it."""
    steps = schedule(prog)
    expected = oracle.races(rows(steps))
    ev = frame(steps)
    found = data_race(tables(ev, cache=False), ev).to_dicts()
    assert first_per_var(found) == expected


@SETTINGS
@given(programs())
def test_data_race_instances_are_real_races(prog):
    """Every first and worst instance data_race reports is a race pair of the oracle."""
    steps = schedule(prog)
    ev = frame(steps)
    found = data_race(tables(ev, cache=False), ev).to_dicts()
    # Every reported instance is a real race, and its partner precedes it.
    real = oracle.race_pairs(rows(steps))
    for f in found:
        for inst in (f["events"], f["worst"]):
            assert (inst[0]["seq"], inst[1]["seq"]) in real


@SETTINGS
@given(programs())
def test_lockset_matches_oracle(prog):
    """inconsistent_locking's earliest instance of each variable is the oracle's first violation."""
    steps = schedule(prog)
    expected = oracle.lockset_violations(rows(steps))
    ev = frame(steps)
    found = inconsistent_locking(tables(ev, cache=False), ev).to_dicts()
    assert first_per_var(found) == expected


@SETTINGS
@given(programs())
def test_lockset_instances_are_real_violations(prog):
    """Every first and worst instance inconsistent_locking reports is a violating pair."""
    steps = schedule(prog)
    ev = frame(steps)
    found = inconsistent_locking(tables(ev, cache=False), ev).to_dicts()
    real = oracle.lockset_pairs(rows(steps))
    for f in found:
        for inst in (f["events"], f["worst"]):
            assert (inst[0]["seq"], inst[1]["seq"]) in real


@SETTINGS
@given(programs())
def test_lockset_sites_are_violating_sites_of_every_violating_variable(prog):
    """Reported site pairs are violating ones, and every violating variable has a finding."""
    steps = schedule(prog)
    ev = frame(steps)
    found = inconsistent_locking(tables(ev, cache=False), ev).to_dicts()
    real = oracle.lockset_pairs(rows(steps))
    # Every violating pair of sites is reported.
    site = {i: (r["var"], r["line"]) for i, r in enumerate(rows(steps))}
    want = {(site[j][0], site[j][1], site[i][1]) for j, i in real}
    got = {(f["var"], f["sites"][0]["line"], f["sites"][1]["line"]) for f in found}
    assert got <= want
    # each violating class pair shows up under the sites of its first instance
    assert {v for v, _, _ in got} == {v for v, _, _ in want}


#: Programs where critical sections of one lock often read what another unit wrote in
#: its own (publication through a lock) and locks are released by non-holders.
HANDING = programs(("x", "y"), ("L1",), foreign=True)


@SETTINGS
@given(HANDING)
def test_lockset_matches_oracle_with_lock_edges_that_hand_over(prog):
    """With publications through a lock and foreign releases, the first violations agree."""
    steps = schedule(prog)
    expected = oracle.lockset_violations(rows(steps))
    ev = frame(steps)
    found = inconsistent_locking(tables(ev, cache=False), ev).to_dicts()
    assert first_per_var(found) == expected


SHORT_LIVED = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SHORT_LIVED
@given(short_lived_programs())
def test_data_race_matches_oracle_with_many_short_lived_units(prog):
    """With a thread per request (more units than one clock node holds), data_race's
    earliest instance of each variable is the oracle's first race on it."""
    steps = schedule(prog)
    ev = frame(steps)
    found = data_race(tables(ev, cache=False), ev).to_dicts()
    assert first_per_var(found) == oracle.races(rows(steps))


@SHORT_LIVED
@given(short_lived_programs())
def test_lockset_matches_oracle_with_many_short_lived_units(prog):
    """With a thread per request, inconsistent_locking's earliest instance of each
    variable is the oracle's first violation on it."""
    steps = schedule(prog)
    ev = frame(steps)
    found = inconsistent_locking(tables(ev, cache=False), ev).to_dicts()
    assert first_per_var(found) == oracle.lockset_violations(rows(steps))
