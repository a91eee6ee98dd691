"""The TUI's model (no textual): summary, tables, timelines, lanes, formatting."""

from __future__ import annotations

import numpy as np
import pytest

from tests.tui.helpers import LAZY, LOCKED, RACY
from tracelens.report import format_duration
from tracelens.tui.app import load_model
from tracelens.tui.model import Axis, lane_geometry, parse_duration, source_lines
from tracelens.tui.screens.main import filter_findings, filter_variables


@pytest.fixture(scope="module")
def racy():
    return load_model(RACY)


@pytest.fixture(scope="module")
def locked():
    return load_model(LOCKED)


def test_summary_counts_the_trace(racy) -> None:
    s = racy.summary
    assert s["events"] == 20106
    assert s["variables"] == 1
    assert s["units"] == 11
    assert s["files"] == 1
    assert s["findings"] == len(racy.findings) >= 1
    assert s["time_span_ns"] > 0


def test_variables_table_counts_reads_writes_and_findings(racy) -> None:
    row = racy.variables_frame.row(0, named=True)
    assert row["var"] == "model['weight']"
    assert (row["reads"], row["writes"], row["accesses"]) == (10001, 10000, 20001)
    assert row["findings"] == len(racy.findings_of("model['weight']"))
    assert "worker-" in row["by_unit"] and "r/" in row["by_unit"]


def test_timeline_lanes_windows_and_highlights(racy) -> None:
    tl = racy.timeline("model['weight']")
    assert len(tl) == 20001
    assert sum(lane.reads for lane in tl.lanes) == 10001
    assert sum(len(lane.rows) for lane in tl.lanes) == len(tl)
    inst = tl.instances[0]
    rows = [tl.row_of(e.pid, e.seq) for e in inst.events]
    assert None not in rows
    assert [tl.event(r)["seq"] for r in rows] == [e.seq for e in inst.events]
    geom = lane_geometry(tl, Axis.ORDER)
    for g in geom:
        assert np.all(np.diff(g.pos) > 0)
        assert len(g.rmw_start) == len(g.rmw_end)
        assert np.all(g.rmw_end > g.rmw_start)
    t = lane_geometry(tl, Axis.TIME)
    assert all(np.all(np.diff(g.pos) >= 0) for g in t)


def test_locks_held_at_a_locked_access(locked) -> None:
    tl = locked.timeline("model['weight']")
    held = tl.locks_held(0)
    assert len(held) == 1 and held[0].startswith("Lock@article_locked.py")
    geom = lane_geometry(tl, Axis.ORDER)
    assert len(geom[0].hold_start) > 0
    assert not locked.findings_of("model['weight']")


def test_filters() -> None:
    model = load_model(LAZY, only=["windows"])
    ff = model.findings_frame
    assert filter_findings(ff, kind="lost_update").height == ff.height
    assert filter_findings(ff, severity="note").height == 0
    assert filter_findings(ff, var="CLIENT").height == ff.height  # case-insensitive
    assert filter_findings(ff, var="(").height == 0  # literal, not a regex
    assert filter_findings(ff, var="['client']").height == ff.height
    assert filter_findings(ff, unit="request-").height == ff.height
    assert filter_variables(model.variables_frame, "cache").height == 2
    assert filter_variables(model.variables_frame, "client").height == 1


def test_search_and_jumps(racy) -> None:
    tl = racy.timeline("model['weight']")
    hit = tl.search("worker-3", after=0)
    assert hit is not None and tl.event(hit)["unit_name"] == "worker-3"
    assert tl.search("no such thing", after=0) is None
    assert tl.event(tl.seq_row(4701))["seq"] == 4701
    r = tl.time_row(30_000_000)
    assert tl.event(r)["ts"] - tl.t0 >= 30_000_000


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("1.5ms", 1_500_000),
        ("200us", 200_000),
        ("200µs", 200_000),
        ("3s", 3_000_000_000),
        ("12", 12_000_000),
        ("850ns", 850),
        ("x", None),
        ("", None),
    ],
)
def test_parse_duration(text: str, ns: int | None) -> None:
    assert parse_duration(text) == ns


def test_compact_durations_have_no_space_before_the_unit() -> None:
    """Durations for the TUI's narrow columns read ``850ns``, ``12.5µs``, ``3.2ms``, ``-``."""
    assert format_duration(850, compact=True) == "850ns"
    assert format_duration(12_500, compact=True) == "12.5µs"
    assert format_duration(3_200_000, compact=True) == "3.2ms"
    assert format_duration(None, compact=True) == "-"


def test_source_lines(tmp_path) -> None:
    f = tmp_path / "m.py"
    f.write_text("".join(f"line{i}\n" for i in range(1, 31)))
    _path, first, text = source_lines(str(f), 15, context=3)
    assert first == 12 and text.splitlines() == [f"line{i}" for i in range(12, 19)]
    assert source_lines("m.py", 2, search=[tmp_path]) is not None
    assert source_lines(str(tmp_path / "missing.py"), 1) is None
    assert source_lines(str(f), 99) is None
