"""Helpers for checking traces in tests.

``read_events`` parses a trace file the slow, obvious way; ``order_fidelity``
checks what the recorder promises: per variable, every recorded read's value is
the value of the latest recorded write before it. Neither imports the analyzer.
``analyze_trace``, ``findings`` and ``assert_no_races`` analyse a trace in-process
(they import the analyzer, and polars, when called), for a test that asserts on what
tracelens finds; ``pytest --tracelens`` (``tracelens.pytest_plugin``) does it per test.

``run_scheduled`` runs a program (a command, or a ``Call`` of one of its functions)
under a forced interleaving (``Plan``: ``Hold`` a unit at a ``Point`` until another
reaches one), the scheduler of
``tracelens.record.schedule``, for a test that fails on a race every time.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from tracelens import schema as s
from tracelens.record.schedule import Call, Hold, Plan, Point, Run, run_in_process, run_scheduled

__all__ = [
    "Call",
    "Fidelity",
    "Hold",
    "Plan",
    "Point",
    "Run",
    "analyze_trace",
    "assert_no_races",
    "assert_not_reproduced",
    "findings",
    "order_fidelity",
    "read_events",
    "run_in_process",
    "run_scheduled",
]


def _tracelens_lines(path: str | Path) -> Iterator[dict[str, Any]]:
    p = Path(path)
    data = gzip.decompress(p.read_bytes()) if p.suffix == ".gz" else p.read_bytes()
    for line in data.splitlines():
        if not line.strip():
            continue
        d = orjson.loads(line)
        if isinstance(d, dict) and s.TL in d:
            yield d


def read_events(path: str | Path) -> list[dict[str, Any]]:
    """The tracelens events of one trace file, sorted by (pid, seq).

    Application lines (JSON objects without ``tl``) and stack definitions
    (``read_stacks``) are dropped; a line that is not JSON raises
    ``orjson.JSONDecodeError``.
    """
    events = [d for d in _tracelens_lines(path) if d.get(s.OP) != s.Op.STACK]
    return sorted(events, key=lambda e: (e[s.PID], e[s.SEQ]))


def read_stacks(path: str | Path) -> dict[tuple[int, int], dict[str, Any]]:
    """The stack definitions of one trace file, by ``(pid, id)``."""
    return {
        (d[s.PID], d[s.STACK_ID]): d for d in _tracelens_lines(path) if d.get(s.OP) == s.Op.STACK
    }


def stack_frames(
    stacks: Mapping[tuple[int, int], Mapping[str, Any]], event: Mapping[str, Any]
) -> list[tuple[str, int, str]]:
    """An event's call stack as ``(file, line, func)`` frames, innermost first (``[]``
    when it has none), from ``read_stacks``' definitions."""
    out: list[tuple[str, int, str]] = []
    fid = event.get(s.STACK)
    pid = event[s.PID]
    while fid is not None and (pid, fid) in stacks and len(out) <= len(stacks):
        d = stacks[(pid, fid)]
        out.append((d[s.FILE], d[s.LINE], d[s.FUNC]))
        fid = d.get(s.STACK_PARENT)
    return out


@dataclass
class Fidelity:
    """Result of ``order_fidelity``: reads checked, reads consistent, the first mismatches."""

    checked: int = 0
    consistent: int = 0
    mismatches: list[tuple[Mapping[str, Any], Mapping[str, Any] | None]] = field(
        default_factory=list
    )

    @property
    def ratio(self) -> float:
        return self.consistent / self.checked if self.checked else 1.0


def order_fidelity(events: Iterable[Mapping[str, Any]]) -> Fidelity:
    """Check that each read saw the latest write recorded before it.

    Only reads that carry a value and follow a recorded write of the same variable
    (in the same process) are checked.

    Args:
        events: Events sorted by (pid, seq), e.g. from ``read_events``.

    Returns:
        How many reads were checked and how many were consistent.
    """
    latest: dict[tuple[int, str], Mapping[str, Any]] = {}
    out = Fidelity()
    for e in events:
        op = e[s.OP]
        if op not in s.MEMORY_OPS or s.VALUE not in e:
            continue
        key = (e[s.PID], e[s.VAR])
        if op == s.Op.WRITE:
            latest[key] = e
            continue
        w = latest.get(key)
        if w is None or w.get(s.VALUE) == "<missing>":
            continue
        out.checked += 1
        if w[s.VALUE] == e[s.VALUE]:
            out.consistent += 1
        elif len(out.mismatches) < 10:
            out.mismatches.append((e, w))
    return out


def analyze_trace(
    path: str | Path,
    *,
    only: Sequence[str] | None = None,
    suppress: Sequence[Any] = (),
) -> Any:
    """Load and analyse a trace in-process (imports the analyzer, and polars).

    Args:
        path: The trace file (or a glob pattern, or several files as for ``report``).
        only: Finding kinds or analyses to run; default all.
        suppress: Suppression rules (``tracelens.analyze.Suppression``).

    Returns:
        The ``tracelens.analyze.Report``: ``findings``, ``summary``, ``suppressed``.
    """
    from tracelens.analyze import analyze, load

    return analyze(load(path), only=only, suppressions=suppress)


def findings(
    path: str | Path,
    *,
    only: Sequence[str] | None = None,
    suppress: Sequence[Any] = (),
) -> list[Any]:
    """The findings of a trace, worst first (``analyze_trace(...).findings``).

    Example::

        tracelens.flush()
        races = tracelens.testing.findings(trace, only=["data_race"])
        assert not races, races[0].explanation
    """
    return list(analyze_trace(path, only=only, suppress=suppress).findings)


def assert_no_races(
    path: str | Path, *, fail_on: str = "error", only: Sequence[str] | None = None
) -> None:
    """Raise ``AssertionError`` with the text report when a finding is at or above ``fail_on``.

    Args:
        path: The trace file.
        fail_on: ``error``, ``warning`` or ``note``.
        only: Finding kinds or analyses to run; default all.
    """
    from tracelens.analyze.findings import severity_rank
    from tracelens.report import text

    report = analyze_trace(path, only=only)
    limit = severity_rank(fail_on)
    if any(severity_rank(f.severity) <= limit for f in report.findings):
        raise AssertionError(text.render(report))


def assert_not_reproduced(
    command: Sequence[str] | Call,
    plan: Plan,
    *,
    var: str = "",
    cwd: str | Path | None = None,
    in_process: bool = False,
) -> None:
    """Force ``plan`` on ``command`` (a command, or a ``Call`` of the program's own
    function, imported) and fail when the bug happens.

    The program runs twice serially (one unit at a time) and once under ``plan``
    (``tracelens.reproduce.force``); the assertion fails when the forced run deadlocks,
    hangs, exits or prints otherwise than the serial runs, or its trace shows a lost
    update of ``var``. A plan that cannot be forced (the accesses are ordered) passes.
    With ``in_process=True`` the ``Call`` runs in this process, its threads and tasks
    scheduled here (``tracelens.record.schedule.run_in_process``: not for lock-order
    inversions, whose forced deadlock cannot be ended in this process); else in a child.

    Raises:
        AssertionError: The forced interleaving showed the bug (what it did, in words).
    """
    from tracelens.reproduce import force

    outcome = force(command, [plan], var=var, cwd=cwd, in_process=in_process)
    if outcome.reproduced:
        raise AssertionError("\n".join([outcome.summary, *outcome.details]))
