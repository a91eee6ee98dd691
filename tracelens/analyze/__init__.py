"""The analyzer: load traces into polars, run analyses, build reports.

::

    trace = load(["run.jsonl", "worker-*.jsonl.gz"])
    report = analyze(trace, suppressions=find_pyproject_suppressions("."))
    for f in report.findings: ...

``ANALYSES`` lists the analyses by name; each maps the loaded events (a LazyFrame) to
rows of ``findings.FINDING_SCHEMA`` and may take a keyword ``kinds`` (the finding kinds
wanted) to skip the work of the others. ``analyze`` runs them side by side, turns the
rows into ``Finding`` objects, applies the suppressions and sorts the findings.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from tracelens import schema as s
from tracelens.analyze import suppress
from tracelens.analyze.findings import SEVERITIES, EventRef, Finding, sort_findings, to_findings
from tracelens.analyze.hb import LOCKS_STATED, PREDICTIVE_KINDS, predictive, predictive_parts
from tracelens.analyze.load import LoadStats, Trace, TraceError, load
from tracelens.analyze.parallel import gc_paused, side_by_side
from tracelens.analyze.suppress import (
    Suppression,
    SuppressionError,
    find_pyproject_suppressions,
    load_suppressions,
)
from tracelens.analyze.windows import KINDS as WINDOW_KINDS
from tracelens.analyze.windows import locks_held, window_findings

__all__ = [
    "ANALYSES",
    "KIND_ANALYSIS",
    "LoadStats",
    "Report",
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

Analysis = Callable[[pl.LazyFrame], pl.LazyFrame]

#: The analyses, by name: events -> rows of FINDING_SCHEMA. One line each.
ANALYSES: dict[str, Analysis] = {
    "windows": window_findings,  # lost_update, atomicity_violation
    "predictive": predictive,  # data_race, inconsistent_locking, lock_order_inversion, deadlock
}

#: Analyses that can also hand out their rows in parts, each as soon as it is ready (the
#: analysis -> a function of the same arguments yielding frames): ``analyze`` turns the
#: first parts into findings while the others are computed.
_IN_PARTS: dict[Analysis, Callable[..., Iterator[pl.DataFrame]]] = {
    predictive: predictive_parts,
}

#: Finding kinds produced by an analysis whose name differs from the kind, so that
#: ``analyze(only=["lost_update"])`` works. (An analysis named like its kind needs no entry.)
KIND_ANALYSIS: dict[str, str] = {
    **dict.fromkeys(WINDOW_KINDS, "windows"),
    **dict.fromkeys(PREDICTIVE_KINDS, "predictive"),
}


@dataclass
class Report:
    """The result of ``analyze``.

    Attributes:
        findings: Findings not suppressed, sorted (``findings.sort_findings``).
        summary: Counts (see ``stats``) plus ``findings``, ``findings_by_kind``,
            ``findings_by_severity`` and ``suppressed``.
        suppressed: Suppressed findings with the rule that matched each.
        stats: What loading saw.
    """

    findings: list[Finding]
    summary: dict[str, Any]
    suppressed: list[tuple[Finding, Suppression]] = field(default_factory=list)
    stats: LoadStats = field(default_factory=LoadStats)


def _plan(only: Iterable[str] | None) -> list[tuple[str, frozenset[str] | None]]:
    """Which analyses to run and which kinds to keep of each (None: all)."""
    if only is None:
        return [(name, None) for name in ANALYSES]
    wanted: dict[str, set[str] | None] = {}
    for name in only:
        if name in ANALYSES:
            wanted[name] = None
        elif name in KIND_ANALYSIS:
            analysis = KIND_ANALYSIS[name]
            kinds = wanted.setdefault(analysis, set())
            if kinds is not None:
                kinds.add(name)
        else:
            known = sorted({*ANALYSES, *KIND_ANALYSIS})
            raise ValueError(f"unknown analysis or kind {name!r} (one of {', '.join(known)})")
    return [(n, None if k is None else frozenset(k)) for n, k in wanted.items()]


def analyze(
    trace: Trace,
    *,
    only: Iterable[str] | None = None,
    suppressions: Sequence[Suppression] = (),
) -> Report:
    """Run analyses on a loaded trace.

    Args:
        trace: From ``load``.
        only: Analysis names (``ANALYSES``) or finding kinds to run; default all.
        suppressions: Rules; a finding matching one goes to ``Report.suppressed``.

    Returns:
        The report.

    Raises:
        ValueError: ``only`` names an unknown analysis or kind.
    """
    plan = _plan(only)
    with gc_paused():  # many small objects, no cycles: the collector would only scan them
        return _analyze(trace, plan, suppressions)


def _analyze(
    trace: Trace,
    plan: list[tuple[str, frozenset[str] | None]],
    suppressions: Sequence[Suppression],
) -> Report:
    def run(name: str, kinds: frozenset[str] | None) -> list[Finding]:
        analysis = ANALYSES[name]
        # the kinds asked for, to an analysis that can skip the work of the others
        asked: dict[str, tuple[str, ...]] = {}
        if kinds is not None and "kinds" in inspect.signature(analysis).parameters:
            asked["kinds"] = tuple(sorted(kinds))
        in_parts = _IN_PARTS.get(analysis)
        parts: Iterable[pl.DataFrame] = (
            in_parts(trace.events, **asked)
            if in_parts is not None
            else [analysis(trace.events, **asked).collect()]
        )
        found: list[Finding] = []
        for rows in parts:  # each part turned into findings as it comes
            if kinds is not None:
                rows = rows.filter(pl.col("kind").is_in(sorted(kinds)))
            found += to_findings(rows)
        return _with_locks(found, trace.events)

    n_events = trace.events.select(pl.len()).collect().item()
    tasks: list[Callable[[], Any]] = [functools.partial(run, n, k) for n, k in plan]
    tasks.append(functools.partial(stats, trace))
    results = side_by_side(tasks, events=n_events)
    summary: dict[str, Any] = results.pop()
    found: list[Finding] = [f for findings in results for f in findings]
    kept, suppressed = suppress.apply_suppressions(found, suppressions)
    kept = sort_findings(kept)
    by_kind = Counter(f.kind for f in kept)
    by_sev = Counter(f.severity for f in kept)
    summary["findings"] = len(kept)
    summary["findings_by_kind"] = dict(sorted(by_kind.items()))
    summary["findings_by_severity"] = {sev: by_sev.get(sev, 0) for sev in SEVERITIES}
    summary["suppressed"] = len(suppressed)
    return Report(findings=kept, summary=summary, suppressed=suppressed, stats=trace.stats)


def _with_locks(findings: list[Finding], events: pl.LazyFrame) -> list[Finding]:
    """Fill in ``locks`` of the events findings show, where an analysis left it empty.

    Kinds in ``LOCKS_STATED`` are left alone: their empty lock sets are the answer.
    """
    wanted = {
        (e.unit, e.seq)
        for f in findings
        if f.kind not in LOCKS_STATED
        for e in (*f.events, *f.worst)
        if not e.locks
    }
    if not wanted:
        return findings
    at = pl.LazyFrame(
        {"unit": [u for u, _ in wanted], "seq": [q for _, q in wanted]},
        schema={"unit": pl.String, "seq": pl.Int64},
    )
    held = {(u, q): tuple(ls) for u, q, ls in locks_held(events, at=at).collect().iter_rows()}
    if not held:
        return findings

    def fill(refs: tuple[EventRef, ...]) -> tuple[EventRef, ...]:
        return tuple(
            dataclasses.replace(e, locks=held.get((e.unit, e.seq), ())) if not e.locks else e
            for e in refs
        )

    return [
        f
        if f.kind in LOCKS_STATED
        else dataclasses.replace(f, events=fill(f.events), worst=fill(f.worst))
        for f in findings
    ]


def stats(trace: Trace) -> dict[str, Any]:
    """Counts for ``tracelens stats`` and the report summary.

    Args:
        trace: From ``load``.

    Returns:
        ``events``, ``variables`` (distinct variable names read or written), ``units``,
        ``sync_objects`` (distinct locks, queues, events... excluding units and
        atomic regions), ``processes``, ``files``, ``lines``, ``app_lines``,
        ``malformed``, ``skipped`` (application + malformed lines), ``first_ts``,
        ``last_ts`` and ``time_span_ns`` (monotonic nanoseconds; per-process clocks
        are comparable on one machine).
    """
    sync_ops = sorted(s.LOCK_OPS | s.HANDOFF_OPS)
    not_sync_kinds = [s.Kind.THREAD, s.Kind.TASK, s.Kind.PROCESS, s.Kind.ATOMIC]
    row = (
        trace.events.select(
            pl.len().alias("events"),
            pl.col("var")
            .filter(pl.col("op").is_in([s.Op.READ, s.Op.WRITE]))
            .n_unique()
            .alias("variables"),
            pl.col("unit").n_unique().alias("units"),
            pl.col("obj")
            .filter(
                pl.col("op").is_in(sync_ops)
                & pl.col("obj").is_not_null()
                & ~pl.col("kind").fill_null("").is_in(not_sync_kinds)
            )
            .n_unique()
            .alias("sync_objects"),
            pl.col("pid").n_unique().alias("processes"),
            pl.col("ts").min().alias("first_ts"),
            pl.col("ts").max().alias("last_ts"),
        )
        .collect()
        .row(0, named=True)
    )
    st = trace.stats
    first, last = row["first_ts"], row["last_ts"]
    return {
        "events": int(row["events"]),
        "variables": int(row["variables"]),
        "units": int(row["units"]),
        "sync_objects": int(row["sync_objects"]),
        "processes": int(row["processes"]),
        "files": len(st.files),
        "lines": st.lines,
        "app_lines": st.app_lines,
        "malformed": st.malformed,
        "skipped": st.app_lines + st.malformed,
        "first_ts": first,
        "last_ts": last,
        "time_span_ns": (last - first) if first is not None and last is not None else 0,
    }
