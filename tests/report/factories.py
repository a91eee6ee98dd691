"""Hand-made findings and reports for the renderer and CLI tests (no trace, no analysis)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tracelens.analyze.findings import EventRef, Finding, Site


@dataclass
class FakeRule:
    """Stands in for ``tracelens.analyze.suppress.Suppression``."""

    kind: str
    var: str
    site: str
    reason: str


@dataclass
class FakeReport:
    """Stands in for ``tracelens.analyze.Report``: what renderers may rely on."""

    findings: Sequence[Finding]
    summary: Mapping[str, Any] = field(default_factory=dict)
    suppressed: Sequence[tuple[Finding, Any]] = ()
    unused_suppressions: Sequence[Any] = ()


def ev(
    role: str,
    seq: int,
    unit: str,
    op: str,
    target: str,
    value: str | None,
    file: str = "/repo/app.py",
    line: int = 12,
    ts: int | None = None,
    locks: tuple[str, ...] = (),
) -> EventRef:
    """One event of a finding."""
    return EventRef(
        role=role,
        seq=seq,
        ts=ts if ts is not None else 1_000 * seq,
        pid=100,
        unit=unit,
        unit_name={"t1": "Thread-1", "t2": "Thread-2"}.get(unit, unit),
        op=op,
        target=target,
        value=value,
        file=file,
        line=line,
        func="work",
        locks=locks,
    )


def lost_update(
    var: str = "model['weight']", file: str = "/repo/app.py", count: int = 3
) -> Finding:
    """The article's bug: read, remote write, local write."""
    events = (
        ev("local read", 1, "t1", "read", var, "1.0", file, 12),
        ev("remote write", 2, "t2", "write", var, "1.1", file, 13),
        ev("local write", 3, "t1", "write", var, "1.1", file, 13),
    )
    return Finding(
        kind="lost_update",
        severity="error",
        var=var,
        units=("Thread-1", "Thread-2"),
        sites=tuple(Site(e.file, e.line, e.func) for e in events),
        count=count,
        events=events,
        worst=events,
        explanation=f"Thread-2's write to {var} was overwritten by Thread-1, "
        "which had read the value before it.",
    )


def atomicity(var: str = "cache", file: str = "/repo/app.py") -> Finding:
    """A warning: read, remote write, local read."""
    events = (
        ev("local read", 10, "t1", "read", var, "0", file, 30, locks=("L",)),
        ev("remote write", 11, "t2", "write", var, "5", file, 40),
        ev("local read", 12, "t1", "read", var, "5", file, 31, locks=("L",)),
    )
    return Finding(
        kind="atomicity_violation",
        severity="warning",
        var=var,
        units=("Thread-1", "Thread-2"),
        sites=tuple(Site(e.file, e.line, e.func) for e in events),
        count=1,
        events=events,
        worst=events,
        explanation="Two reads of cache disagree.",
    )


SUMMARY = {
    "events": 1234,
    "variables": 3,
    "units": 4,
    "sync_objects": 2,
    "files": 1,
    "lines": 1300,
    "app_lines": 60,
    "malformed": 6,
    "skipped": 66,
    "time_span_ns": 2_500_000,
    "findings_by_kind": {"lost_update": 1},
    "findings_by_severity": {"error": 1},
}


def report() -> FakeReport:
    """A report with one error, one warning and one suppressed finding."""
    suppressed = atomicity("legacy_counter")
    return FakeReport(
        findings=[atomicity(), lost_update()],
        summary=dict(SUMMARY),
        suppressed=[
            (suppressed, FakeRule("atomicity_violation", "legacy_*", "", "known, tracked in #12"))
        ],
    )


def empty_report() -> FakeReport:
    """A report without findings."""
    return FakeReport(findings=[], summary=dict(SUMMARY))


#: A variable name that tries to inject markup into every output format.
EVIL = "<script>alert(1)</script>[bold red]x[/bold red]`|**@octocat** </details>"


def evil_report() -> FakeReport:
    """A report whose trace strings try to inject markup."""
    return FakeReport(
        findings=[lost_update(EVIL, file="/repo/<img src=x onerror=alert(1)>.py")],
        summary=dict(SUMMARY),
    )
