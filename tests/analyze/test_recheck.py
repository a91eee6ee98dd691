"""Double-checked locking: a race whose read is re-checked under the lock of the write is
said so (a warning when every read there is); without the re-check it stays an error."""

from __future__ import annotations

from pathlib import Path

from tests.traces import write_steps
from tracelens.analyze import analyze, load
from tracelens.analyze.findings import ERROR, WARNING


def _start(*units: str) -> list[tuple]:
    out: list[tuple] = []
    for u in units:
        out += [("t0", "fork", u), (u, "begin", u)]
    return out


def _init(u: str) -> list[tuple]:
    """u finds the value missing, then under L finds it still missing and writes it."""
    return [
        (u, "read", "cache['x']", {"line": 10, "value": None}),
        (u, "acquire", "L", {"line": 11}),
        (u, "read", "cache['x']", {"line": 12, "value": None}),
        (u, "write", "cache['x']", {"line": 13, "value": 1}),
        (u, "release", "L", {"line": 14}),
    ]


def _rechecks(u: str) -> list[tuple]:
    """u finds the value missing, then under L finds it there: it writes nothing."""
    return [
        (u, "read", "cache['x']", {"line": 10, "value": None}),
        (u, "acquire", "L", {"line": 11}),
        (u, "read", "cache['x']", {"line": 12, "value": 1}),
        (u, "release", "L", {"line": 14}),
    ]


def _races(tmp_path: Path, steps: list[tuple]) -> list:
    report = analyze(load(write_steps(steps, tmp_path / "t.jsonl")), only=["data_race"])
    return [f for f in report.findings if {s.line for s in f.sites} == {10, 13}]


def test_a_double_checked_read_is_reported_as_a_warning_that_says_so(tmp_path: Path) -> None:
    """t2's unlocked read races with t1's locked write but is re-checked under L: still
    reported, as a warning naming the re-check."""
    (f,) = _races(tmp_path, [*_start("t1", "t2"), *_init("t1"), *_rechecks("t2")])
    assert f.severity == WARNING
    assert "re-checked under L at app.py:12 (double-checked locking)" in f.explanation


def test_a_read_acted_on_without_the_lock_stays_an_error(tmp_path: Path) -> None:
    """The racy twin: t2 reads without the lock and writes on what it saw, no re-check."""
    steps = [
        *_start("t1", "t2"),
        *_init("t1"),
        ("t2", "read", "cache['x']", {"line": 10, "value": None}),
        ("t2", "write", "cache['x']", {"line": 13, "value": 2}),
    ]
    found = _races(tmp_path, steps)
    assert found and all(f.severity == ERROR for f in found)
    assert all("double-checked" not in f.explanation for f in found)


def test_a_fast_path_read_elsewhere_keeps_the_error_but_the_note(tmp_path: Path) -> None:
    """When another read at the same site is not re-checked (t3 uses what it read), the
    finding says the shown read is re-checked but stays an error."""
    steps = [
        *_start("t1", "t2", "t3"),
        *_init("t1"),
        *_rechecks("t2"),
        ("t3", "read", "cache['x']", {"line": 10, "value": 1}),
        ("t3", "read", "cache['x']", {"line": 20, "value": 1}),
    ]
    (f,) = _races(tmp_path, steps)
    assert f.severity == ERROR
    assert "double-checked locking" in f.explanation


def test_a_recheck_under_another_lock_is_said_but_stays_an_error(tmp_path: Path) -> None:
    """A re-check under a lock the write did not hold orders nothing: noted, still an error."""
    steps = [
        *_start("t1", "t2"),
        *_init("t1"),
        ("t2", "read", "cache['x']", {"line": 10, "value": None}),
        ("t2", "acquire", "M", {"line": 11}),
        ("t2", "read", "cache['x']", {"line": 12, "value": 1}),
        ("t2", "release", "M", {"line": 14}),
    ]
    found = _races(tmp_path, steps)
    assert found and all(f.severity == ERROR for f in found)
