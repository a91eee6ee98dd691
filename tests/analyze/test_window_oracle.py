"""The polars window analysis against a brute-force Python reading of the definitions."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import polars as pl
from hypothesis import HealthCheck, given, settings

from tests.strategies import interleavings
from tests.traces import write_trace
from tracelens import schema as s
from tracelens.analyze import load
from tracelens.analyze.findings import to_findings
from tracelens.analyze.windows import window_findings

R, W = s.Op.READ, s.Op.WRITE
NEVER = 2**62
ROLES = {
    "RWW": ("local read", "remote write", "local write"),
    "RWR": ("local read", "remote write", "local read"),
    "WRW": ("local write", "remote read", "local write"),
    "WWR": ("local write", "remote write", "local read"),
}


def oracle(events: list[dict[str, Any]]) -> dict[tuple[Any, ...], tuple[int, tuple[int, ...]]]:
    """Findings by brute force, as the docs define them (one process).

    Returns:
        key (kind, var, sites, roles) -> (count, seqs of the first instance's events).
    """
    events = sorted(events, key=lambda e: e[s.SEQ])
    # Outermost atomic region of each access, per unit.
    region: dict[int, int | None] = {}
    depth: dict[str, int] = defaultdict(int)
    count: dict[str, int] = defaultdict(int)
    for e in events:
        u, op = e[s.UNIT], e[s.OP]
        if op == s.Op.ATOMIC_BEGIN:
            if depth[u] == 0:
                count[u] += 1
            depth[u] += 1
        elif op == s.Op.ATOMIC_END:
            depth[u] -= 1
        elif op in (R, W):
            region[e[s.SEQ]] = count[u] if depth[u] > 0 else None
    # Lock holds: (unit) -> [(acquired, released)]; released = the unit's next event on it.
    holds: dict[str, list[tuple[int, int]]] = defaultdict(list)
    lock_events = [
        e
        for e in events
        if e[s.OP] in (s.Op.ACQUIRE, s.Op.RELEASE) and not e.get(s.INTERNAL, False)
    ]
    for i, e in enumerate(lock_events):
        if e[s.OP] != s.Op.ACQUIRE:
            continue
        nxt = next(
            (
                f[s.SEQ]
                for f in lock_events[i + 1 :]
                if f[s.UNIT] == e[s.UNIT] and f[s.OBJ] == e[s.OBJ]
            ),
            NEVER,
        )
        holds[e[s.UNIT]].append((e[s.SEQ], nxt))

    acc = [e for e in events if e[s.OP] in (R, W)]
    out: dict[tuple[Any, ...], list[Any]] = {}
    for i, c in enumerate(acc):
        u, v = c[s.UNIT], c[s.VAR]
        prev = [p for p in acc[:i] if p[s.UNIT] == u and p[s.VAR] == v]
        if not prev:
            continue
        p = prev[-1]
        between = [e for e in acc if e[s.VAR] == v and p[s.SEQ] < e[s.SEQ] < c[s.SEQ]]
        assert all(e[s.UNIT] != u for e in between)
        rw = [e for e in between if e[s.OP] == W]
        rr = [e for e in between if e[s.OP] == R]
        atomic = region[p[s.SEQ]] is not None and region[p[s.SEQ]] == region[c[s.SEQ]]
        locked = any(a <= p[s.SEQ] and r > c[s.SEQ] for a, r in holds[u])
        scoped = atomic or locked
        pc = (p[s.OP], c[s.OP])
        if pc == (R, W) and rw:
            pat, remote = "RWW", rw[0]
        elif scoped and pc == (R, R) and rw:
            pat, remote = "RWR", rw[0]
        elif scoped and pc == (W, W) and rr:
            pat, remote = "WRW", rr[0]
        elif scoped and pc == (W, R) and rw:
            pat, remote = "WWR", rw[0]
        else:
            continue
        kind = "lost_update" if pat == "RWW" else "atomicity_violation"
        sites = tuple((e[s.FILE], e[s.LINE], e[s.FUNC]) for e in (p, remote, c))
        key = (kind, v, sites, ROLES[pat])
        instance = (p[s.SEQ], remote[s.SEQ], c[s.SEQ])
        if key not in out:
            out[key] = [0, instance]
        out[key][0] += 1
        # The first instance is the one whose window starts first.
        out[key][1] = min(out[key][1], instance)
    return {k: (n, first) for k, (n, first) in out.items()}


def analysed(events: list[dict[str, Any]], tmp_path: Any) -> dict[tuple[Any, ...], Any]:
    trace = load(write_trace(tmp_path / "t.jsonl", events))
    frame = window_findings(trace.events)
    result = {}
    for f in to_findings(frame):
        sites = tuple((x.file, x.line, x.func) for x in f.sites)
        roles = tuple(e.role for e in f.events)
        result[(f.kind, f.var, sites, roles)] = (f.count, tuple(e.seq for e in f.events))
    return result


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(events=interleavings())
def test_polars_windows_match_the_brute_force_definition(events, tmp_path):
    """On random interleavings the polars windows give the brute-force oracle's findings."""
    assert oracle(events) == analysed(events, tmp_path)


def test_findings_frame_has_the_finding_schema(tmp_path):
    """window_findings returns a DataFrame of the finding schema plus the damage columns."""
    from tests.traces import TraceBuilder

    b = TraceBuilder()
    b.read("t1", "x")
    b.write("t2", "x")
    b.write("t1", "x")
    trace = load(b.write_to(tmp_path / "t.jsonl"))
    frame = window_findings(trace.events)
    from tracelens.analyze.findings import FINDING_SCHEMA, OPTIONAL_FINDING_COLUMNS

    assert frame.schema == pl.Schema({**FINDING_SCHEMA, **OPTIONAL_FINDING_COLUMNS})
    assert isinstance(frame, pl.DataFrame)
