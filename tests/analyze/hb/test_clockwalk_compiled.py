"""The compiled happens-before walk (``_clockwalk``) gives the pure-Python walk's outputs."""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tracelens.analyze import columns as c
from tracelens.analyze.hb import clocks
from tracelens.analyze.hb.clocks import (
    ACQUIRE,
    EDGE_OPS,
    FORK,
    JOIN,
    OBJ_CODE,
    OTHER_UNIT,
    RECEIVE,
    RELEASE,
    SEND,
    U,
    vector_clocks,
    vector_clocks_py,
)

pytestmark = pytest.mark.skipif(
    clocks.compiled is None, reason="the compiled walk is not built or is switched off"
)


#: Every edge, hand-offs twice as often (their message and anonymous cases are many).
OPS = (ACQUIRE, RELEASE, FORK, JOIN, SEND, SEND, RECEIVE, RECEIVE)


@st.composite
def walks(draw: st.DrawFn) -> tuple[pl.DataFrame, int, tuple[list[int], list[int], list[int]]]:
    """Synchronisation events over a few units spread across 1, 2 or 3 trie levels, and
    queries at random positions (some before the first event, some at the last)."""
    n = draw(st.sampled_from([1, 4, 33, 1100]))
    pool = draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=4, unique=True))
    unit = st.sampled_from(pool)
    events = draw(
        st.lists(
            st.tuples(
                st.sampled_from(OPS),
                unit,
                st.none() | st.integers(-1, 1),  # a lock or hand-off object (negative too)
                st.none() | unit,  # the forked or joined unit
                st.none() | st.integers(0, 1),  # message id
                st.integers(1, 3),  # gap to the next G (several events never share one)
            ),
            max_size=60,
        )
    )
    rows: dict[str, list[Any]] = {k: [] for k in (c.G, c.OP, U, OBJ_CODE, OTHER_UNIT, c.MSG)}
    g = 0
    for op, u, obj, other, msg, gap in events:
        g += gap
        values = (g, op, u, obj, other if op in (FORK, JOIN) else None, msg)
        for k, v in zip(rows, values, strict=True):
            rows[k].append(v)
    schema = {
        c.G: pl.Int64,
        c.OP: pl.Int64,
        U: pl.Int32,
        OBJ_CODE: pl.Int64,
        OTHER_UNIT: pl.Int32,
        c.MSG: pl.Int64,
    }
    sync = pl.DataFrame(rows, schema=schema)
    queries = sorted(draw(st.lists(st.tuples(st.integers(-1, g + 1), unit, unit), max_size=30)))
    return sync, n, ([q[0] for q in queries], [q[1] for q in queries], [q[2] for q in queries])


@settings(max_examples=400, deadline=None)
@given(walks(), st.booleans())
def test_compiled_walk_gives_the_python_walks_outputs(walk, versions):
    """Answers, segments and every snapshot of every unit's clock equal the Python walk's."""
    sync, n, queries = walk
    got = vector_clocks(sync, n, versions=versions, queries=queries)
    want = vector_clocks_py(sync, n, versions=versions, queries=queries)
    assert got.answers == want.answers
    assert got.segments == want.segments
    if versions:
        assert got.versions is not None and want.versions is not None
        assert got.versions.snapshots == want.versions.snapshots
    else:
        assert got.versions is None and want.versions is None


def test_compiled_walk_answers_what_a_lock_hands_over():
    """A release by unit 0 at epoch 1, acquired by unit 1, is known to 1 after the acquire
    and not before (the walk is not trivially all zeros)."""
    sync = pl.DataFrame(
        {
            c.G: [1, 2, 3],
            c.OP: [ACQUIRE, RELEASE, ACQUIRE],
            U: [0, 0, 1],
            OBJ_CODE: [7, 7, 7],
            OTHER_UNIT: [None, None, None],
            c.MSG: [None, None, None],
        },
        schema_overrides={OTHER_UNIT: pl.Int32, c.MSG: pl.Int64},
    )
    got = vector_clocks(sync, 2, versions=False, queries=([2, 3, 3], [1, 1, 0], [0, 0, 1]))
    assert got.answers == [0, 1, 0]


def test_compiled_walk_rejects_a_unit_id_out_of_range():
    """A unit id at or beyond ``n`` raises IndexError instead of reading past the clocks."""
    sync = pl.DataFrame(
        {c.G: [1], c.OP: [SEND], U: [5], OBJ_CODE: [0], OTHER_UNIT: [None], c.MSG: [None]},
        schema_overrides={OTHER_UNIT: pl.Int32, c.MSG: pl.Int64},
    )
    with pytest.raises(IndexError):
        vector_clocks(sync, 2, versions=False)


def test_walks_share_the_edge_codes():
    """The op codes the compiled walk switches on (0 to 5) are those of ``EDGE_OPS``' order."""
    assert tuple(range(len(EDGE_OPS))) == (ACQUIRE, RELEASE, FORK, JOIN, SEND, RECEIVE)
