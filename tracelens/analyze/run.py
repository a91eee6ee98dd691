"""``analyze()``: plan which analyses to run, run them side by side, suppress, count.

The analysis protocol. An analysis is a module under ``tracelens.analyze`` named in
the catalogue (``kinds.ANALYSES``) with a function::

    def run(
        events: pl.LazyFrame, /, *, kinds: Collection[str] | None = None,
        options: Options = DEFAULT,
    ) -> Iterator[pl.DataFrame]: ...

It takes the loaded events and yields collected frames of ``findings.FINDING_SCHEMA``
rows (after those columns, any of ``findings.OPTIONAL_FINDING_COLUMNS``), of the
kinds asked for only (``None``: every kind it computes, which the catalogue lists),
as soon as each is ready; ``analyze`` turns a frame into ``Finding`` objects while
the analysis computes the next. Every option an analysis reads comes in ``options``;
it keeps no state between calls beyond caches keyed by the events frame, and may run
in a thread other than the caller's.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import polars as pl

from tracelens import schema as s
from tracelens.analyze import suppress
from tracelens.analyze.findings import EventRef, Finding, listed_locks, sort_findings, to_findings
from tracelens.analyze.grouping import group_findings
from tracelens.analyze.kinds import ANALYSES, KINDS, SEVERITIES
from tracelens.analyze.load import LoadStats, Trace
from tracelens.analyze.options import DEFAULT, Options
from tracelens.analyze.parallel import gc_paused, side_by_side
from tracelens.analyze.recheck import mark_rechecked
from tracelens.analyze.stacks import with_stacks
from tracelens.analyze.suppress import Suppression
from tracelens.analyze.windows import locks_held

__all__ = ["Analysis", "Report", "analysis", "analyze", "plan", "stats"]


class Analysis(Protocol):
    """The ``run`` function of an analysis module (see the module docstring)."""

    def __call__(
        self,
        events: pl.LazyFrame,
        /,
        *,
        kinds: Collection[str] | None = ...,
        options: Options = ...,
    ) -> Iterator[pl.DataFrame]: ...


def analysis(name: str) -> Analysis:
    """The ``run`` function of the analysis ``name`` (``kinds.ANALYSES``)."""
    module = importlib.import_module(f"tracelens.analyze.{ANALYSES[name].module}")
    run: Analysis = module.run
    return run


@dataclass
class Report:
    """The result of ``analyze``.

    Attributes:
        findings: Findings not suppressed, sorted (``findings.sort_findings``).
        summary: Counts (see ``stats``) plus ``findings``, ``findings_by_kind``,
            ``findings_by_severity`` and ``suppressed``.
        suppressed: Suppressed findings with the rule that matched each.
        stats: What loading saw.
        unused_suppressions: The rules that matched no finding.
    """

    findings: list[Finding]
    summary: dict[str, Any]
    suppressed: list[tuple[Finding, Suppression]] = field(default_factory=list)
    stats: LoadStats = field(default_factory=LoadStats)
    unused_suppressions: list[Suppression] = field(default_factory=list)


def plan(only: Iterable[str] | None) -> list[tuple[str, frozenset[str] | None]]:
    """Which analyses to run and which kinds to keep of each (None: all).

    Args:
        only: Analysis names or finding kinds; ``None`` for everything.

    Raises:
        ValueError: ``only`` names an unknown analysis or kind.
    """
    if only is None:
        return [(name, None) for name in ANALYSES]
    wanted: dict[str, set[str] | None] = {}
    for name in only:
        if name in ANALYSES:
            wanted[name] = None
        elif name in KINDS:
            kinds = wanted.setdefault(KINDS[name].analysis, set())
            if kinds is not None:
                kinds.add(name)
        else:
            known = sorted({*ANALYSES, *KINDS})
            raise ValueError(f"unknown analysis or kind {name!r} (one of {', '.join(known)})")
    return [(n, None if k is None else frozenset(k)) for n, k in wanted.items()]


def analyze(
    trace: Trace,
    *,
    only: Iterable[str] | None = None,
    suppressions: Sequence[Suppression] = (),
    options: Options = DEFAULT,
) -> Report:
    """Run analyses on a loaded trace.

    Args:
        trace: From ``load``.
        only: Analysis names (``kinds.ANALYSES``) or finding kinds to run; default all.
        suppressions: Rules; a finding matching one goes to ``Report.suppressed``.
        options: Switches and tuning limits of the analyses.

    Returns:
        The report.

    Raises:
        ValueError: ``only`` names an unknown analysis or kind.
    """
    todo = plan(only)
    with gc_paused():  # many small objects, no cycles: the collector would only scan them
        return _analyze(trace, todo, suppressions, options)


def _analyze(
    trace: Trace,
    todo: list[tuple[str, frozenset[str] | None]],
    suppressions: Sequence[Suppression],
    options: Options,
) -> Report:
    def run(name: str, kinds: frozenset[str] | None) -> list[Finding]:
        found: list[Finding] = []
        for rows in analysis(name)(trace.events, kinds=kinds, options=options):
            found += to_findings(rows)  # each part turned into findings as it comes
        return _with_locks(found, trace.events)

    n_events = trace.events.select(pl.len()).collect().item()
    tasks: list[Callable[[], Any]] = [functools.partial(run, n, k) for n, k in todo]
    tasks.append(functools.partial(stats, trace))
    results = side_by_side(tasks, parallel=options.parallel(n_events))
    summary: dict[str, Any] = results.pop()
    found: list[Finding] = mark_rechecked(
        [f for findings in results for f in findings], trace.events
    )
    kept, suppressed = suppress.apply_suppressions(found, suppressions)
    kept = sort_findings(with_stacks(group_findings(kept), trace.events, trace.stacks))
    by_kind = Counter(f.kind for f in kept)
    by_sev = Counter(f.severity for f in kept)
    summary["findings"] = len(kept)
    summary["bugs"] = len({f.group for f in kept})
    summary["findings_by_kind"] = dict(sorted(by_kind.items()))
    summary["findings_by_severity"] = {sev: by_sev.get(sev, 0) for sev in SEVERITIES}
    summary["suppressed"] = len(suppressed)
    used = {id(rule) for _f, rule in suppressed}
    return Report(
        findings=kept,
        summary=summary,
        suppressed=suppressed,
        stats=trace.stats,
        unused_suppressions=[r for r in suppressions if id(r) not in used],
    )


def _with_locks(findings: list[Finding], events: pl.LazyFrame) -> list[Finding]:
    """Fill in ``locks`` of the events findings show, where an analysis left it empty.

    Kinds whose catalogue entry says ``locks_stated`` are left alone: their empty lock
    sets are the answer.
    """
    wanted = {
        (e.unit, e.seq)
        for f in findings
        if not _locks_stated(f.kind)
        for e in (*f.events, *f.worst)
        if not e.locks
    }
    if not wanted:
        return findings
    at = pl.LazyFrame(
        {"unit": [u for u, _ in wanted], "seq": [q for _, q in wanted]},
        schema={"unit": pl.String, "seq": pl.Int64},
    )
    held = {
        (u, q): listed_locks(ls) for u, q, ls in locks_held(events, at=at).collect().iter_rows()
    }
    if not held:
        return findings

    def fill(refs: tuple[EventRef, ...]) -> tuple[EventRef, ...]:
        out = []
        for e in refs:
            got = None if e.locks else held.get((e.unit, e.seq))
            if got is not None:
                e = dataclasses.replace(e, locks=got[0], lock_count=got[1])
            out.append(e)
        return tuple(out)

    return [
        f
        if _locks_stated(f.kind)
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
        ``malformed``, ``skipped`` (application + malformed lines), ``duplicates``
        (repeated events dropped; only when there were some), ``first_ts``,
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
        # only when there were some: repeated events are rare, reports stay as they were
        **({"duplicates": st.duplicates} if st.duplicates else {}),
        "first_ts": first,
        "last_ts": last,
        "time_span_ns": (last - first) if first is not None and last is not None else 0,
    }


def _locks_stated(kind: str) -> bool:
    info = KINDS.get(kind)
    return info is not None and info.locks_stated
