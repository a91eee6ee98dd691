"""Double-checked locking: a data race whose read its unit re-checks under a lock.

``if cache.get(k) is None: with lock: if cache.get(k) is None: cache[k] = make()``: the
first read races with the write (it is reported, and stays reported), but the unit
decides under the lock, on a second read. ``mark_rechecked`` finds the ``data_race``
findings that are a read against a write where the reading unit's next access to the
variable is a read holding a lock, and says so in the finding; when the write held that
lock too, the re-check is ordered with it and only the unlocked fast path races, so the
finding becomes a warning. A race whose reader does not re-check under a lock (it acts
on what it read) stays as it was.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import polars as pl

from tracelens import schema as s
from tracelens.analyze import columns as c
from tracelens.analyze.findings import WARNING, EventRef, Finding
from tracelens.analyze.windows import locks_held

__all__ = ["KIND", "mark_rechecked"]

#: The kind this marks.
KIND = "data_race"


def _candidates(findings: Sequence[Finding]) -> list[tuple[int, EventRef, EventRef]]:
    """(index, the unlocked read, the write) of each race of one read and one write."""
    out = []
    for i, f in enumerate(findings):
        if f.kind != KIND or len(f.events) != 2:
            continue
        reads = [e for e in f.events if e.op == s.Op.READ and not e.locks]
        writes = [e for e in f.events if e.op == s.Op.WRITE]
        if len(reads) == 1 and len(writes) == 1 and reads[0].unit != writes[0].unit:
            out.append((i, reads[0], writes[0]))
    return out


#: Most reads of one site checked for a re-check (each is paired with the locks its unit
#: took): beyond, the finding says what its first instance shows, at its severity.
MAX_READS = 10_000


def mark_rechecked(findings: list[Finding], events: pl.LazyFrame) -> list[Finding]:
    """The findings, with the data races that are double-checked locking said so.

    A finding is marked when the read it shows is re-checked under a lock: its unit's
    next access to the variable is a read holding one. It becomes a warning when, in
    the whole trace, every read at that site of that variable is re-checked under a lock
    that the finding's write held (at most ``MAX_READS`` of them): no read there acts on
    what it saw without the lock.

    Args:
        findings: With their events' locks filled in (``run._with_locks``).
        events: The loaded trace.
    """
    cands = _candidates(findings)
    if not cands:
        return findings
    sites = pl.LazyFrame(
        {
            c.VAR: [r.target for _, r, _ in cands],
            c.FILE: [r.file for _, r, _ in cands],
            c.LINE: [r.line for _, r, _ in cands],
        },
        schema={c.VAR: pl.String, c.FILE: pl.String, c.LINE: pl.Int64},
    ).unique()
    memory = events.filter(
        pl.col(c.OP).is_in([s.Op.READ, s.Op.WRITE])
        & pl.col(c.VAR).is_in(sorted({r.target for _, r, _ in cands}))
    )
    reads = (
        memory.filter(pl.col(c.OP) == s.Op.READ)
        .join(sites, on=[c.VAR, c.FILE, c.LINE])
        .select(c.UNIT, c.VAR, c.FILE, c.LINE, pl.col(c.SEQ).alias("after"))
        .collect()
    )
    if reads.height > MAX_READS * len(cands):
        reads = reads.head(0)
    # each read's unit's next access to the variable (null when there is none)
    paired = (
        memory.select(c.UNIT, c.VAR, c.SEQ, c.OP, pl.col(c.FILE).alias("n_file"),
                      pl.col(c.LINE).alias("n_line"))
        .sort(c.SEQ)
        .join_asof(
            reads.lazy().sort("after").with_columns((pl.col("after") + 1).alias(c.SEQ)),
            on=c.SEQ, by=[c.UNIT, c.VAR], strategy="backward",
            check_sortedness=False,  # both sorted by seq: within every group too
        )
    )  # fmt: skip
    # (join_asof pairs each access with the latest read before it: keep the first access
    # after each read, which is the read's next access)
    nxt = (
        paired.filter(pl.col("after").is_not_null())
        .group_by(c.UNIT, c.VAR, "after")
        .agg(pl.all().sort_by(c.SEQ).first())
        .collect()
    )
    locked_reads = nxt.filter(pl.col(c.OP) == s.Op.READ)
    held = {
        (u, q): frozenset(ls)
        for u, q, ls in locks_held(events, at=locked_reads.lazy().select(c.UNIT, c.SEQ))
        .collect()
        .iter_rows()
    }
    # read (unit, var, seq) -> (locks of its re-check, where), for the re-checked ones
    again = {
        (u, v, a): (held[(u, q)], f"{file}:{line}")
        for u, v, a, q, file, line in locked_reads.select(
            c.UNIT, c.VAR, "after", c.SEQ, "n_file", "n_line"
        ).iter_rows()
        if held.get((u, q))
    }
    at_site: dict[tuple[str, str, int], list[tuple[str, int]]] = {}
    for u, v, file, line, a in reads.select(c.UNIT, c.VAR, c.FILE, c.LINE, "after").iter_rows():
        at_site.setdefault((v, file, line), []).append((u, a))
    out = list(findings)
    for i, read, write in cands:
        hit = again.get((read.unit, read.target, read.seq))
        if hit is None:
            continue
        locks, where = hit
        shared = sorted(locks & set(write.locks))
        note = (
            f"; the read is re-checked under {', '.join(shared or sorted(locks))} at {where}"
            " (double-checked locking)"
        )
        f = out[i]
        every = at_site.get((read.target, read.file, read.line), [])
        if (
            shared
            and every
            and all(
                set(shared) & again.get((u, read.target, a), (frozenset(), ""))[0] for u, a in every
            )
        ):
            note += ": every read at its site is re-checked under the lock of the write"
            f = dataclasses.replace(f, severity=WARNING)
        out[i] = dataclasses.replace(f, explanation=f.explanation + note)
    return out
