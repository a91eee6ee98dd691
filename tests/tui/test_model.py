"""The TUI's model (no textual): summary, tables, timelines, lanes, formatting."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from tests.tui.helpers import LAZY, LOCKED, RACY
from tracelens.report import format_duration
from tracelens.report.sources import MAX_SOURCE_BYTES, source_lines
from tracelens.tui.app import load_model
from tracelens.tui.model import Axis, lane_geometry, parse_duration
from tracelens.tui.screens.main import filter_findings, filter_variables


@pytest.fixture(scope="module")
def racy():
    return load_model(RACY)


@pytest.fixture(scope="module")
def locked():
    return load_model(LOCKED)


def test_summary_counts_the_trace(racy) -> None:
    """The model's summary counts the sample's events, variables, units, files, findings, span."""
    s = racy.summary
    assert s["events"] == 20107
    assert s["variables"] == 1
    assert s["units"] == 11
    assert s["files"] == 1
    assert s["findings"] == len(racy.findings) >= 1
    assert s["time_span_ns"] > 0


def test_variables_table_counts_reads_writes_and_findings(racy) -> None:
    """A variables row counts the variable's reads, writes, accesses and findings, per unit too."""
    row = racy.variables_frame.row(0, named=True)
    assert row["var"] == "model['weight']"
    assert (row["reads"], row["writes"], row["accesses"]) == (10001, 10000, 20001)
    assert row["findings"] == len(racy.findings_of("model['weight']"))
    assert "worker-" in row["by_unit"] and "r/" in row["by_unit"]


def test_timeline_lanes_windows_and_highlights(racy) -> None:
    """A variable's timeline holds its accesses, and its lanes share them out among themselves."""
    tl = racy.timeline("model['weight']")
    assert len(tl) == 20001
    assert sum(lane.reads for lane in tl.lanes) == 10001
    assert sum(len(lane.rows) for lane in tl.lanes) == len(tl)


def test_timeline_finds_each_instance_event_at_its_row(racy) -> None:
    """Every event of a finding's first instance has a timeline row showing that event."""
    tl = racy.timeline("model['weight']")
    inst = tl.instances[0]
    rows = [tl.row_of(e.pid, e.seq) for e in inst.events]
    assert None not in rows
    assert [tl.event(r)["seq"] for r in rows] == [e.seq for e in inst.events]


def test_lane_geometry_in_event_order(racy) -> None:
    """In event order, a lane's positions strictly increase and each window ends after it starts."""
    tl = racy.timeline("model['weight']")
    geom = lane_geometry(tl, Axis.ORDER)
    for g in geom:
        assert np.all(np.diff(g.pos) > 0)
        assert len(g.rmw_start) == len(g.rmw_end)
        assert np.all(g.rmw_end > g.rmw_start)


def test_lane_geometry_in_time(racy) -> None:
    """On the time axis, a lane's positions never decrease."""
    tl = racy.timeline("model['weight']")
    t = lane_geometry(tl, Axis.TIME)
    assert all(np.all(np.diff(g.pos) >= 0) for g in t)


def test_locks_held_at_a_locked_access(locked) -> None:
    """The first access of the locked sample holds exactly its one Lock."""
    tl = locked.timeline("model['weight']")
    held = tl.locks_held(0)
    assert len(held) == 1 and held[0].startswith("Lock@article_locked.py")


def test_lane_geometry_draws_lock_holds(locked) -> None:
    """The first lane of the locked sample's timeline has lock-hold spans to draw."""
    tl = locked.timeline("model['weight']")
    geom = lane_geometry(tl, Axis.ORDER)
    assert len(geom[0].hold_start) > 0


def test_locked_sample_has_no_finding(locked) -> None:
    """The locked sample has no finding on model['weight']."""
    assert not locked.findings_of("model['weight']")


@pytest.fixture(scope="module")
def lazy_windows():
    return load_model(LAZY, only=["windows"])


@pytest.mark.parametrize(
    ("criterion", "keeps_all"),
    [
        ({"kind": "lost_update"}, True),
        ({"severity": "note"}, False),
        ({"var": "CLIENT"}, True),  # case-insensitive
        ({"var": "("}, False),  # literal, not a regex
        ({"var": "['client']"}, True),
        ({"unit": "request-"}, True),
    ],
    ids=["kind", "severity", "var case-insensitive", "var literal", "var brackets", "unit"],
)
def test_filters(lazy_windows, criterion, keeps_all) -> None:
    """A findings filter keeps the findings it matches, reading text literally, ignoring case."""
    ff = lazy_windows.findings_frame
    assert filter_findings(ff, **criterion).height == (ff.height if keeps_all else 0)


@pytest.mark.parametrize(("text", "rows"), [("cache", 2), ("client", 1)])
def test_variable_filter(lazy_windows, text, rows) -> None:
    """The variables filter keeps the variables whose name contains the text."""
    assert filter_variables(lazy_windows.variables_frame, text).height == rows


def test_search_and_jumps(racy) -> None:
    """search() finds a row that matches the text, and None when nothing does."""
    tl = racy.timeline("model['weight']")
    hit = tl.search("worker-3", after=0)
    assert hit is not None and tl.event(hit)["unit_name"] == "worker-3"
    assert tl.search("no such thing", after=0) is None


def test_jumps_by_sequence_number_and_by_time(racy) -> None:
    """seq_row gives the row of that seq, and time_row the first row at or after that time."""
    tl = racy.timeline("model['weight']")
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
    """parse_duration reads ns, us, µs, ms and s, takes a bare number as ms, and rejects junk."""
    assert parse_duration(text) == ns


def test_compact_durations_have_no_space_before_the_unit() -> None:
    """Durations for the TUI's narrow columns read ``850ns``, ``12.5µs``, ``3.2ms``, ``-``."""
    assert format_duration(850, compact=True) == "850ns"
    assert format_duration(12_500, compact=True) == "12.5µs"
    assert format_duration(3_200_000, compact=True) == "3.2ms"
    assert format_duration(None, compact=True) == "-"


@pytest.fixture
def thirty_lines(tmp_path):
    """A file m.py of thirty lines, line1 to line30."""
    f = tmp_path / "m.py"
    f.write_text("".join(f"line{i}\n" for i in range(1, 31)))
    return f


def test_source_lines(thirty_lines, tmp_path) -> None:
    """source_lines gives the line with context lines on each side, and the first one's number."""
    f = thirty_lines
    _path, first, text = source_lines(str(f), 15, context=3, roots=[tmp_path])
    assert first == 12 and text.splitlines() == [f"line{i}" for i in range(12, 19)]


def test_source_lines_looks_in_the_search_directories(thirty_lines, tmp_path) -> None:
    """A relative path is found in the search directories."""
    assert isinstance(source_lines("m.py", 2, search=[tmp_path]), tuple)


def test_source_lines_of_a_missing_file_or_line_says_why(thirty_lines, tmp_path) -> None:
    """source_lines says why for a file that does not exist or a line past the end."""
    f = thirty_lines
    assert source_lines(str(tmp_path / "missing.py"), 1, roots=[tmp_path]) == (
        "not found on this machine"
    )
    assert source_lines(str(f), 99, roots=[tmp_path]) == "line 99 is past the end of the file"


def test_source_lines_refuses_files_outside_the_allowed_directories(tmp_path) -> None:
    """A trace naming /etc/passwd or ../secret.py gets no source, only the reason."""
    inside = tmp_path / "project"
    inside.mkdir()
    (tmp_path / "secret.py").write_text("password = 1\n")

    assert source_lines("/etc/passwd", 1, roots=[inside]).startswith("outside the project")
    assert source_lines("../secret.py", 1, search=[inside]).startswith("outside the project")


def test_source_lines_refuses_a_symlink_that_leads_out(tmp_path) -> None:
    """A link inside the project to a file outside it is judged by where it leads."""
    inside = tmp_path / "project"
    inside.mkdir()
    (tmp_path / "secret.py").write_text("password = 1\n")
    (inside / "link.py").symlink_to(tmp_path / "secret.py")

    assert source_lines(str(inside / "link.py"), 1, roots=[inside]).startswith("outside")


def test_source_lines_refuses_big_and_non_regular_files(tmp_path) -> None:
    """A file over the size cap, a FIFO or a device is not read, and the reason says so."""
    big = tmp_path / "big.py"
    big.write_bytes(b"x = 1\n" * (MAX_SOURCE_BYTES // 6 + 1))
    fifo = tmp_path / "pipe.py"
    os.mkfifo(fifo)

    assert source_lines(str(big), 1, roots=[tmp_path]).startswith("larger than")
    assert source_lines(str(fifo), 1, roots=[tmp_path]) == "not a regular file"
    assert source_lines("/dev/zero", 1, roots=[Path("/dev")]) == "not a regular file"


def test_source_lines_escapes_control_characters_in_the_code(tmp_path) -> None:
    """Escape sequences and bidi overrides in a source file are shown as \\xNN / \\uNNNN."""
    f = tmp_path / "m.py"
    f.write_text("a = '\x1b]0;pwned\x07'\nb = '\u202e'\n")

    _path, _first, text = source_lines(str(f), 1, roots=[tmp_path])
    assert "\x1b" not in text and "\u202e" not in text
    assert text.splitlines() == ["a = '\\x1b]0;pwned\\x07'", "b = '\\u202e'"]
