"""Call stacks: the frames of ``Trace.stacks`` given to the events findings show.

The recorder interns each event's call stack as a chain of frame definitions (``stack``
lines: ``id``, ``parent``, site) and names its innermost frame in the event's ``stack``
field (``docs/trace-format.md``). ``with_stacks`` follows those chains for the events of
the findings, and gives each event its unit's creation stack: the stack of the ``fork``
event that started the thread or created the task, and who did; and, for an event inside
an executor job, the stack of the ``submit`` that queued the job, and who did.

A job is what a thread pool's worker runs between its ``recv`` of a future with a
``msg`` (the job starts) and its ``send`` of that future (it ended, ``record/futures.py``);
the ``submit`` is the ``send`` of the same future with the same ``msg``.
"""

from __future__ import annotations

import bisect
import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Final

import polars as pl

from tracelens import schema as s
from tracelens.analyze import columns as c
from tracelens.analyze.findings import EventRef, Finding, Site

__all__ = ["MAX_FRAMES", "Job", "chain", "executor_jobs", "frame_table", "job_of", "with_stacks"]

#: The most frames a stack shows (the recorder records at most 64): a chain whose
#: parents loop, in a hand-made trace, ends there.
MAX_FRAMES: Final = 64

#: (pid, frame id) -> (parent id or None, the frame's site).
FrameTable = Mapping[tuple[int, int], tuple[int | None, Site]]


def frame_table(stacks: pl.DataFrame) -> dict[tuple[int, int], tuple[int | None, Site]]:
    """``Trace.stacks`` as a lookup table (the first definition of an id wins)."""
    table: dict[tuple[int, int], tuple[int | None, Site]] = {}
    for pid, fid, parent, file, line, func in stacks.select(
        c.PID, c.STACK_ID, c.STACK_PARENT, c.FILE, c.LINE, c.FUNC
    ).iter_rows():
        table.setdefault((pid, fid), (parent, Site(file or "?", line or 0, func or "?")))
    return table


def chain(table: FrameTable, pid: int, fid: int | None) -> tuple[Site, ...]:
    """The frames of the stack whose innermost frame is ``fid``, innermost first.

    Stops at a frame the table does not define (its line was lost in a crash), at a
    frame seen already and after ``MAX_FRAMES`` frames.
    """
    out: list[Site] = []
    seen: set[int] = set()
    while fid is not None and fid not in seen and len(out) < MAX_FRAMES:
        got = table.get((pid, fid))
        if got is None:
            break
        seen.add(fid)
        fid, site = got
        out.append(site)
    return tuple(out)


def with_stacks(
    findings: list[Finding], events: pl.LazyFrame, stacks: pl.DataFrame
) -> list[Finding]:
    """The findings with their events' stacks and their units' creation stacks.

    Args:
        findings: As the analyses and the grouping made them.
        events: The loaded events (``Trace.events``).
        stacks: Their frames (``Trace.stacks``); empty for a trace without stacks,
            which still gets the creation sites (a ``fork`` event's call site).
    """
    refs = [e for f in findings for e in (*f.events, *f.worst)]
    if not refs:
        return findings
    table = frame_table(stacks)
    at = {(e.pid, e.seq) for e in refs}
    units = {e.unit for e in refs}
    rows = (
        events.filter(
            pl.col(c.STACK).is_not_null()
            & pl.col(c.PID).is_in(sorted({p for p, _ in at}))
            & pl.col(c.SEQ).is_in(sorted({q for _, q in at}))
        )
        .select(c.PID, c.SEQ, c.STACK)
        .collect()
        if table
        else pl.DataFrame()
    )
    stack_at = {(p, q): chain(table, p, fid) for p, q, fid in rows.iter_rows() if (p, q) in at}
    created = _creations(events, units, table)
    jobs = executor_jobs(events, units, table)

    def fill(refs: Iterable[EventRef]) -> tuple[EventRef, ...]:
        out = []
        for e in refs:
            where, by = created.get(e.unit, ((), ""))
            stack = stack_at.get((e.pid, e.seq), ())
            sub_at, sub_by = job_of(jobs, e.unit, e.seq)
            if stack or where or by or sub_at:
                e = dataclasses.replace(
                    e,
                    stack=stack,
                    created_at=where,
                    created_by=by,
                    submitted_at=sub_at,
                    submitted_by=sub_by,
                )
            out.append(e)
        return tuple(out)

    return [dataclasses.replace(f, events=fill(f.events), worst=fill(f.worst)) for f in findings]


def _creations(
    events: pl.LazyFrame, units: set[str], table: FrameTable
) -> dict[str, tuple[tuple[Site, ...], str]]:
    """unit -> (its creation stack, who created it), from the first ``fork`` of each."""
    forks = (
        events.filter((pl.col(c.OP) == s.Op.FORK) & pl.col(c.OBJ).is_in(sorted(units)))
        .group_by(c.OBJ)
        .agg(pl.all().sort_by(c.PID, c.SEQ).first().name.keep())
        .select(c.OBJ, c.PID, c.UNIT, c.UNIT_NAME, c.FILE, c.LINE, c.FUNC, c.STACK)
        .collect()
    )
    out: dict[str, tuple[tuple[Site, ...], str]] = {}
    for obj, pid, parent, name, file, line, func, fid in forks.iter_rows():
        stack = chain(table, pid, fid) or (Site(file or "?", line or 0, func or "?"),)
        out[obj] = (stack, f"{c.unit_word(parent)} {name or parent}")
    return out


@dataclasses.dataclass(frozen=True, slots=True)
class Job:
    """One executor job a unit ran: its events are those between ``start`` and ``end``."""

    start: int
    end: int | None
    submitted_at: tuple[Site, ...]
    submitted_by: str


def job_of(jobs: Mapping[str, Sequence[Job]], unit: str, seq: int) -> tuple[tuple[Site, ...], str]:
    """(the submit stack, who submitted) of the job ``unit`` ran at ``seq``, or ``((), "")``.

    ``jobs[unit]`` is sorted by ``start``; jobs of one unit do not overlap.
    """
    mine = jobs.get(unit)
    if not mine:
        return (), ""
    i = bisect.bisect_right(mine, seq, key=lambda j: j.start) - 1
    if i < 0:
        return (), ""
    job = mine[i]
    if job.end is not None and seq > job.end:
        return (), ""
    return job.submitted_at, job.submitted_by


def executor_jobs(events: pl.LazyFrame, units: set[str], table: FrameTable) -> dict[str, list[Job]]:
    """unit -> the executor jobs it ran, by start (only the units of ``units``)."""
    # One scan: the futures' hand-offs (a small part of a trace), split here.
    fut = (
        events.filter(
            (pl.col(c.KIND) == s.Kind.FUTURE) & pl.col(c.OP).is_in([s.Op.SEND, s.Op.RECV])
        )
        .select(
            c.PID, c.SEQ, c.OP, c.UNIT, c.UNIT_NAME, c.OBJ, c.MSG, c.FILE, c.LINE, c.FUNC, c.STACK
        )
        .with_columns(pl.col(c.OP).cast(pl.String))
        .collect()
    )
    mine = fut.filter(pl.col(c.UNIT).is_in(sorted(units)))
    starts = mine.filter((pl.col(c.OP) == s.Op.RECV) & pl.col(c.MSG).is_not_null())
    if starts.is_empty():
        return {}
    ends = mine.filter((pl.col(c.OP) == s.Op.SEND) & pl.col(c.MSG).is_null()).select(
        c.PID, c.UNIT, c.OBJ, c.SEQ
    )
    submits = fut.filter(
        (pl.col(c.OP) == s.Op.SEND)
        & pl.col(c.MSG).is_not_null()
        & pl.col(c.OBJ).is_in(starts.get_column(c.OBJ).unique().sort().to_list())
    ).select(c.PID, c.OBJ, c.MSG, c.UNIT, c.UNIT_NAME, c.FILE, c.LINE, c.FUNC, c.STACK)
    starts = starts.select(c.PID, c.UNIT, c.OBJ, c.MSG, c.SEQ)
    end_at: dict[tuple[int, str, str], list[int]] = {}
    for pid, unit, obj, seq in ends.iter_rows():
        end_at.setdefault((pid, unit, obj), []).append(seq)
    submitted: dict[tuple[int, str, int], tuple[tuple[Site, ...], str]] = {}
    for pid, obj, msg, unit, name, file, line, func, fid in submits.iter_rows():
        stack = chain(table, pid, fid) or (Site(file or "?", line or 0, func or "?"),)
        submitted.setdefault((pid, obj, msg), (stack, f"{c.unit_word(unit)} {name or unit}"))
    out: dict[str, list[Job]] = {}
    for pid, unit, obj, msg, seq in starts.sort(c.PID, c.SEQ).iter_rows():
        end = min((q for q in end_at.get((pid, unit, obj), ()) if q > seq), default=None)
        where, by = submitted.get((pid, obj, msg), ((), ""))
        out.setdefault(unit, []).append(Job(seq, end, where, by))
    return out
