"""ClockWalk and vector_clocks against plain dense vector clocks (every edge a full join,
no shortcut)."""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tracelens.analyze import columns as c
from tracelens.analyze.hb.clocks import (
    ACQUIRE,
    FORK,
    JOIN,
    OBJ_CODE,
    OTHER_UNIT,
    RECEIVE,
    RELEASE,
    SEND,
    ClockWalk,
    U,
    vector_clocks,
)

N_UNITS = 4

_event = st.tuples(
    st.sampled_from(("acquire", "release", "send", "recv", "fork", "join")),
    st.integers(0, N_UNITS - 1),  # unit
    st.integers(0, 2),  # lock or hand-off object, or the other unit
    st.none() | st.integers(0, 1),  # message id
)


class PlainClocks:
    """Vector clocks as dicts, each edge the textbook join (the reference)."""

    def __init__(self, n: int) -> None:
        self.c = [{u: 1} for u in range(n)]
        self.lock: dict[int, dict[int, int]] = {}
        self.sent: dict[object, dict[int, int]] = {}

    @staticmethod
    def join(a: dict[int, int], b: dict[int, int]) -> None:
        for k, v in b.items():
            a[k] = max(a.get(k, 0), v)

    def tick(self, u: int) -> None:
        self.c[u][u] += 1

    def knows(self, u: int, p: int) -> int:
        return 0 if u == p else self.c[u].get(p, 0)

    def step(self, op: str, u: int, x: int, msg: int | None) -> None:
        if op == "acquire" and x in self.lock:
            self.join(self.c[u], self.lock[x])
        elif op == "release":
            self.lock[x] = dict(self.c[u])
            self.tick(u)
        elif op == "send":
            for key in (x, (x, msg) if msg is not None else ("anon", x)):
                self.join(self.sent.setdefault(key, {}), self.c[u])
            self.tick(u)
        elif op == "recv":
            if msg is not None and (x, msg) in self.sent:
                self.join(self.c[u], self.sent[(x, msg)])
                self.join(self.c[u], self.sent.get(("anon", x), {}))
            elif x in self.sent:
                self.join(self.c[u], self.sent[x])
        elif op in ("fork", "join") and x != u:
            dst, src = (x, u) if op == "fork" else (u, x)
            self.join(self.c[dst], self.c[src])
            self.tick(src)


@settings(max_examples=300, deadline=None)
@given(st.lists(_event, max_size=40), st.booleans())
def test_clock_walk_knows_what_plain_vector_clocks_know(events, versions):
    """After every event, what each unit knows of each other equals the plain clocks'."""
    walk, plain = ClockWalk(N_UNITS, versions=versions), PlainClocks(N_UNITS)
    for g, (op, u, x, msg) in enumerate(events):
        plain.step(op, u, x, msg)
        if op == "acquire":
            walk.acquire(u, x, g)
        elif op == "release":
            walk.release(u, x, g)
        elif op == "send":
            walk.send(u, x, msg, g)
        elif op == "recv":
            walk.receive(u, x, msg, g)
        elif x != u:
            (walk.fork if op == "fork" else walk.join)(u, x, g)
        for a in range(N_UNITS):
            for b in range(N_UNITS):
                assert walk.knows(a, b) == plain.knows(a, b), (g, a, b)


_CODES = {"acquire": ACQUIRE, "release": RELEASE, "send": SEND, "recv": RECEIVE}


@pytest.mark.usefixtures("walk_path")
@settings(max_examples=200, deadline=None)
@given(st.lists(_event, max_size=40))
def test_vector_clocks_answer_what_plain_vector_clocks_know(events):
    """``vector_clocks`` (compiled and Python) answers, after every event, what each unit
    knows of each other as the plain clocks do."""
    plain = PlainClocks(N_UNITS)
    rows: dict[str, list[Any]] = {k: [] for k in (c.G, c.OP, U, OBJ_CODE, OTHER_UNIT, c.MSG)}
    at: list[int] = []
    want: list[int] = []
    for g, (op, u, x, msg) in enumerate(events, start=1):
        plain.step(op, u, x, msg)
        edge = op in ("fork", "join")
        if edge and x == u:
            continue  # the plain clocks skip these too
        values = (g, _CODES.get(op, FORK if op == "fork" else JOIN), u, None if edge else x)
        for k, v in zip(rows, (*values, x if edge else None, msg), strict=True):
            rows[k].append(v)
        for a in range(N_UNITS):
            for b in range(N_UNITS):
                at.append(g)
                want.append(plain.knows(a, b))
    sync = pl.DataFrame(rows, schema_overrides={OTHER_UNIT: pl.Int32, c.MSG: pl.Int64})
    sync = sync.cast({c.G: pl.Int64, c.OP: pl.Int64, U: pl.Int32, OBJ_CODE: pl.Int64})
    pairs = [(a, b) for a in range(N_UNITS) for b in range(N_UNITS)] * (len(at) // N_UNITS**2)
    queries = (at, [a for a, _ in pairs], [b for _, b in pairs])
    assert vector_clocks(sync, N_UNITS, versions=False, queries=queries).answers == want
