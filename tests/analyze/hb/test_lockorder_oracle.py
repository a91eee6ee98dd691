"""lock_order_inversion against the plain per-event oracle on Hypothesis-generated traces."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.analyze.hb import hb_oracle as oracle
from tests.traces import frame, rows
from tracelens.analyze.hb import lock_order_inversion, tables
from tracelens.analyze.options import Options

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

LOCKS = ("A", "B", "C", "D", "E")


@st.composite
def nested_locking(draw: st.DrawFn) -> list[tuple[str, str, str]]:
    """Steps: 2..4 units, each taking a few locks nested (in any order, now and then one
    it holds already, released in any order), interleaved at random. Locks are not
    exclusive here, so a unit may take a lock another holds (it becomes the holder)."""
    n_units = draw(st.integers(2, 4))
    programs = []
    for _ in range(n_units):
        prog: list[tuple[str, str]] = []
        for _ in range(draw(st.integers(1, 3))):
            order = draw(st.lists(st.sampled_from(LOCKS), min_size=1, max_size=4))
            released = draw(st.permutations(order))
            prog += [("acquire", x) for x in order] + [("release", x) for x in released]
        programs.append(prog)
    steps, pcs = [], [0] * n_units
    live = list(range(n_units))
    while live:
        i = draw(st.sampled_from(live))
        op, lock = programs[i][pcs[i]]
        steps.append((f"t{i + 1}", op, lock))
        pcs[i] += 1
        if pcs[i] == len(programs[i]):
            live.remove(i)
    return steps


def _found(steps, options: Options) -> list[tuple[str, list, int]]:
    ev = frame(steps)
    got = lock_order_inversion(tables(ev, options=options, cache=False), ev, options=options)
    out = []
    for f in got.to_dicts():
        seqs = [e["seq"] for e in f["events"]]
        out.append((f["var"], list(zip(seqs[::2], seqs[1::2], strict=True)), f["count"]))
    return out


@SETTINGS
@given(nested_locking(), st.integers(2, 4))
def test_lock_order_inversion_matches_oracle(steps, max_cycle):
    """Its cycles, chosen acquires, counts and order are the plain oracle's."""
    want = oracle.lock_order_cycles(rows(steps), max_cycle=max_cycle)
    assert _found(steps, Options(max_cycle=max_cycle)) == want


@SETTINGS
@given(nested_locking())
def test_lock_order_inversion_with_locks_tracked_in_python_matches_oracle(steps):
    """Beyond ``Options.max_mask_locks`` (held sets tracked in Python): the oracle's cycles."""
    want = oracle.lock_order_cycles(rows(steps))
    assert _found(steps, Options(max_mask_locks=0)) == want
