"""Perfetto export: valid trace-event JSON whose structure Perfetto can import."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import polars as pl
import pytest

from tests.report.factories import lost_update
from tracelens.export import perfetto

_COLUMNS = {
    "pid": pl.Int64,
    "seq": pl.Int64,
    "ts": pl.Int64,
    "op": pl.String,
    "unit": pl.String,
    "unit_name": pl.String,
    "tid": pl.Int64,
    "thread": pl.String,
    "task": pl.String,
    "var": pl.String,
    "obj": pl.String,
    "kind": pl.String,
    "value": pl.String,
    "file": pl.String,
    "line": pl.Int64,
    "func": pl.String,
    "wait_ns": pl.Int64,
    "msg": pl.Int64,
    "count": pl.Int64,
    "internal": pl.Boolean,
}


def _row(seq: int, op: str, unit: str, **kw: Any) -> dict[str, Any]:
    row = dict.fromkeys(_COLUMNS)
    row.update(
        pid=100,
        seq=seq,
        ts=1_000 * seq,
        op=op,
        unit=unit,
        unit_name={"t1": "Thread-1", "t2": "Thread-2"}[unit],
        tid=2**40 + int(unit[1:]),  # a native id that does not fit 32 bits
        file="/repo/app.py",
        line=12,
        func="work",
        internal=False,
    )
    row.update(kw)
    return row


@pytest.fixture
def doc() -> dict[str, Any]:
    var = "model['weight']"
    rows = [
        _row(1, "read", "t1", var=var, value="1.0"),
        _row(2, "write", "t2", var=var, value="1.1", line=13),
        _row(3, "write", "t1", var=var, value="1.1", line=13),
        _row(4, "acquire", "t1", obj="L", kind="lock", wait_ns=0),
        _row(5, "read", "t1", var="y", value="0"),
        _row(6, "acquire", "t1", obj="M", kind="lock", wait_ns=0),
        _row(7, "release", "t1", obj="L", kind="lock"),  # released out of order
        _row(8, "write", "t1", var="y", value="1"),
        _row(9, "release", "t1", obj="M", kind="lock"),
    ]
    events = pl.DataFrame(rows, schema=_COLUMNS).lazy()
    out = perfetto.to_chrome_trace(events, [lost_update(var)])
    return json.loads(perfetto.dumps(out))


def test_output_is_a_trace_event_object(doc: dict[str, Any]) -> None:
    """The export is a trace-event object: a traceEvents list with nanosecond display units."""
    assert isinstance(doc["traceEvents"], list) and doc["displayTimeUnit"] == "ns"


def test_every_unit_gets_a_named_track_with_a_32_bit_tid(doc: dict[str, Any]) -> None:
    """Each unit has one thread_name track, named after its thread and its unit id."""
    names = {
        e["tid"]: e["args"]["name"]
        for e in doc["traceEvents"]
        if e["ph"] == "M" and e["name"] == "thread_name"
    }
    assert sorted(names.values()) == ["Thread-1 [t1]", "Thread-2 [t2]"]


def test_every_tid_fits_in_32_bits(doc: dict[str, Any]) -> None:
    """Native thread ids wider than 32 bits become tids between 0 and 2**31."""
    assert all(0 <= e.get("tid", 0) < 2**31 for e in doc["traceEvents"])


def test_accesses_are_instants_on_the_unit_track(doc: dict[str, Any]) -> None:
    """Accesses are thread-scoped instant events named by op and variable."""
    instants = [e for e in doc["traceEvents"] if e["ph"] == "i"]
    assert {e["name"] for e in instants} >= {"read y", "write y"}
    assert all(e["s"] == "t" for e in instants)


def test_async_slices_have_matching_ends(doc: dict[str, Any]) -> None:
    """Every async begin has one end with the same category, id and name, and vice versa."""
    begins = Counter((e["cat"], e["id"], e["name"]) for e in doc["traceEvents"] if e["ph"] == "b")
    ends = Counter((e["cat"], e["id"], e["name"]) for e in doc["traceEvents"] if e["ph"] == "e")
    assert begins == ends


def test_each_window_is_an_async_slice(doc: dict[str, Any]) -> None:
    """Each access window, here t1's on model['weight'] and on y, is one async slice."""
    begins = Counter((e["cat"], e["id"], e["name"]) for e in doc["traceEvents"] if e["ph"] == "b")
    windows = [k for k in begins if k[0] == "window"]
    assert len(windows) == 2  # model['weight'] by t1, y by t1


def test_the_finding_is_an_async_slice_with_its_details(doc: dict[str, Any]) -> None:
    """The finding is an async slice named by kind and variable, carrying its fingerprint."""
    finding = next(e for e in doc["traceEvents"] if e["ph"] == "b" and e["cat"] == "finding")
    assert finding["name"] == "lost_update model['weight']"
    assert finding["args"]["fingerprint"] == lost_update().fingerprint


def test_a_flow_arrow_runs_from_the_remote_write_into_the_window(doc: dict[str, Any]) -> None:
    """A flow arrow runs forward in time from the remote write into the local write."""
    ends = [e for e in doc["traceEvents"] if "bind_id" in e]
    out = next(e for e in ends if e.get("flow_out"))
    into = next(e for e in ends if e.get("flow_in"))
    assert out["bind_id"] == into["bind_id"] and out["ts"] <= into["ts"]
    assert out["args"]["role"] == "remote write" and into["args"]["role"] == "local write"


def test_lock_holds_are_slices_and_overlapping_ones_async(doc: dict[str, Any]) -> None:
    """Lock holds are duration slices, but one that overlaps another without nesting is async."""
    holds = [e for e in doc["traceEvents"] if e.get("cat") == "lock"]
    assert {(e["ph"], e["name"]) for e in holds} == {
        ("X", "hold L"),
        ("b", "hold M"),
        ("e", "hold M"),
    }


def test_duration_slices_nest_on_every_track(doc: dict[str, Any]) -> None:
    """On every track the duration slices nest properly, never partly overlapping."""
    by_track: dict[tuple[int, int], list[tuple[float, float]]] = {}
    for e in doc["traceEvents"]:
        if e["ph"] == "X":
            by_track.setdefault((e["pid"], e["tid"]), []).append((e["ts"], e["ts"] + e["dur"]))
    for spans in by_track.values():
        stack: list[float] = []
        for start, end in sorted(spans, key=lambda s: (s[0], -s[1])):
            while stack and stack[-1] <= start:
                stack.pop()
            assert not stack or end <= stack[-1]
            stack.append(end)
