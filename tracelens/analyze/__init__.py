"""The analyzer: load traces into polars, run analyses, build reports.

::

    trace = load(["run.jsonl", "worker-*.jsonl.gz"])
    report = analyze(trace, suppressions=find_pyproject_suppressions("."))
    for f in report.findings: ...

This module only re-exports; ``docs/architecture.md`` says where each part lives.
"""

from __future__ import annotations

from tracelens.analyze import suppress
from tracelens.analyze.findings import EventRef, Finding, Site
from tracelens.analyze.kinds import ANALYSES, KINDS
from tracelens.analyze.load import LoadStats, Trace, load
from tracelens.analyze.options import LoadOptions, Options
from tracelens.analyze.run import Report, analyze, stats
from tracelens.analyze.suppress import (
    Suppression,
    find_pyproject_suppressions,
    load_suppressions,
)
from tracelens.exceptions import SuppressionError, TraceError

__all__ = [
    "ANALYSES",
    "KINDS",
    "EventRef",
    "Finding",
    "LoadOptions",
    "LoadStats",
    "Options",
    "Report",
    "Site",
    "Suppression",
    "SuppressionError",
    "Trace",
    "TraceError",
    "analyze",
    "find_pyproject_suppressions",
    "load",
    "load_suppressions",
    "stats",
    "suppress",
]
